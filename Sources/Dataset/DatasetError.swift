import SystemIO

/// The one error type of the Dataset module: problems with a dataset's versions and their storage (a shard's own
/// bytes are the MDS module's `ShardError`).
public struct DatasetError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// Another run holds the dataset's lock.
        case locked
        /// Another run published the version this run meant to publish (the compare-and-swap of `commit` failed).
        case conflict
        /// The dataset or version does not exist.
        case notFound
        /// The store could not be written (disk full, permissions, a file-size limit).
        case writeFailed
        /// A stored file contradicts what it should be (unreadable manifest, a parent shard of the wrong size).
        case corrupt
        /// The output root cannot hold datasets (a URL scheme this build does not speak, an uncreatable path).
        case invalidLocation
    }

    public var code: Code
    /// The file or directory involved.
    public var path: String
    public var message: String
    /// The errno behind a failed system call, when there is one.
    public var errno: Int32?

    public init(_ code: Code, path: String, _ message: String, errno: Int32? = nil) {
        self.code = code
        self.path = path
        self.message = message
        self.errno = errno
    }

    /// A failed system call as a store error; the message already names the path and the reason.
    public init(_ error: SystemError, code: Code = .writeFailed) {
        self.init(code, path: error.path, error.description, errno: error.errno)
    }

    public var description: String { message.contains(path) ? message : "\(message) (\(path))" }

    /// True when the same operation may succeed later without anyone changing the input: a lock that will be
    /// released, space that may be freed.
    public var isRetryable: Bool {
        switch code {
        case .locked, .conflict: true
        case .writeFailed: errno.map { SystemError("", path: path, errno: $0).isRetryable } ?? false
        case .notFound, .corrupt, .invalidLocation: false
        }
    }
}
