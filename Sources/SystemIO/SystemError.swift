#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call, with the words a user reads: "cannot write /x/shard.abc.mds.zstd: No space left on device
/// (errno 28)". Every POSIX call of the project goes through this module, so EINTR, fsync and errno text are handled
/// once; the shard format and the dataset store wrap this error in their own.
public struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What was being done, as a verb phrase: "write shard", "create directory".
    public var operation: String
    public var path: String
    public var errno: Int32
    /// Said instead of errno's text when the call succeeded but the result is still wrong (a file shorter than expected).
    public var detail: String?

    public init(_ operation: String, path: String, errno: Int32, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.detail = detail
    }

    public var description: String { "cannot \(operation) \(path): \(detail ?? Self.describe(errno))" }

    /// errno as text, e.g. "No space left on device (errno 28)".
    public static func describe(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return "\(String(cString: text)) (errno \(code))"
    }

    /// Out of space, inodes or quota: the operator frees some and reruns.
    public var isNoSpace: Bool { errno == ENOSPC || errno == EDQUOT || errno == EFBIG }

    /// True when the same call may succeed later (space freed, a network file system back).
    public var isRetryable: Bool {
        [ENOSPC, EDQUOT, EIO, EAGAIN, EINTR, ETIMEDOUT, ENOMEM, EMFILE, ENFILE].contains(errno)
    }
}
