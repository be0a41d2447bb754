import SystemIO
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one error type of the MDS module (the shard format).
///
/// `description` is the whole message meant for a user; `code`, `path` and `column` are there so callers can
/// decide what to do (quarantine one sample, abort a run, retry) without parsing text.
public struct ShardError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// An encoding name that is not an MDS encoding we can read and write.
        case invalidEncoding
        /// Column list or writer options that cannot produce a valid MDS dataset.
        case invalidConfiguration
        /// A sample lacks a value for one of the columns.
        case missingColumn
        /// A sample has a key that is not one of the columns (probably a typo; mosaicml would drop it silently).
        case unknownColumn
        /// A value of the wrong kind for its column's encoding (e.g. a string for `int32`).
        case typeMismatch
        /// A value that does not fit its column's encoding (e.g. 300 for `uint8`).
        case valueOutOfRange
        /// A value of the right kind that is still unusable (invalid JSON text, ndarray shape/data mismatch).
        case invalidValue
        /// A single sample that cannot fit in one shard (offsets are u32, so a raw shard stays under 4 GiB).
        case sampleTooLarge
        /// A file system call failed (open, write, read, fsync, rename...).
        case io
        /// zstd refused to compress or decompress.
        case compression
        /// index.json is missing, unreadable or not an MDS v2 index.
        case invalidIndex
        /// A shard's bytes contradict its index entry or the MDS layout.
        case corruptShard
        /// A shard file's hash differs from the one recorded in index.json.
        case hashMismatch
        /// The writer was used after `finish()` or after an earlier I/O failure.
        case writerClosed
    }

    public var code: Code
    /// The file or directory involved, when there is one.
    public var path: String?
    /// The column involved, when there is one.
    public var column: String?
    /// The complete, user-facing message (already mentions `path` and `column`).
    public var message: String
    /// The errno behind an `.io` error, when there is one.
    public var errno: Int32?

    public init(_ code: Code, path: String? = nil, column: String? = nil, errno: Int32? = nil, _ message: String) {
        self.code = code
        self.path = path
        self.column = column
        self.errno = errno
        self.message = message
    }

    public var description: String { message }

    /// True when only the offending sample is at fault: the writer is still usable, so the caller may
    /// quarantine that sample and continue.
    public var isSampleError: Bool {
        switch code {
        case .missingColumn, .unknownColumn, .typeMismatch, .valueOutOfRange, .invalidValue, .sampleTooLarge: true
        default: false
        }
    }

    /// True when trying the same operation again later may succeed (e.g. a full disk that gets space back,
    /// an interrupted network file system). Everything else is a bug in the input or the data.
    public var isRetryable: Bool {
        guard code == .io, let errno else { return false }
        return [ENOSPC, EDQUOT, EIO, EAGAIN, EINTR, ETIMEDOUT, ENOMEM, EMFILE, ENFILE].contains(errno)
    }
}

extension ShardError {
    /// An `.io` error for a failed system call, formatted like
    /// "cannot write shard /x/shard.00003.mds.zstd: No space left on device (errno 28)".
    static func io(_ action: String, path: String, errno code: Int32) -> ShardError {
        ShardError(SystemError(action, path: path, errno: code))
    }
}
