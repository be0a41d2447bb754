import Foundation

/// Problems with the dataset directory itself (as opposed to a shard's bytes, which are `ShardError`s).
public struct DatasetStoreError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// Another run holds the dataset's lock.
        case locked
        case notFound
        case writeFailed
        case corrupt
    }

    public var code: Code
    public var path: String
    public var message: String

    public init(_ code: Code, path: String, _ message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    public var description: String { "\(message) (\(path))" }
}

/// errno as the words a user reads, e.g. "No space left on device (errno 28)".
func describeErrno(_ code: Int32) -> String {
    "\(String(cString: strerror(code))) (errno \(code))"
}
