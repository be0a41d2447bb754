import Foundation

/// The one error type of the ObjectStorage module. The message names the bucket and key (or the local file) and what
/// the server or the network said; it never holds a credential: every message passes through `Redaction` with the
/// credentials in use before it is built into an error.
public struct ObjectStorageError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// No such bucket or key (404).
        case notFound
        /// A conditional request lost: `If-None-Match: *` found the key already there (412), or a copy's source changed.
        case preconditionFailed
        /// The credentials were refused or lack a permission (401/403).
        case accessDenied
        /// No credentials were found, or a shared config/credentials file cannot be used.
        case credentials
        /// A fault that may pass (5xx, throttling, a timeout, a dropped connection) and did not within the retries.
        case transient
        /// The request itself is wrong (a bad endpoint URL, a 4xx other than the above).
        case invalidRequest
        /// A local file could not be read or written.
        case localFile
    }

    public var code: Code
    /// `s3://bucket/key`, or the local path for `.localFile`.
    public var location: String
    public var message: String
    /// The HTTP status, when a response came.
    public var httpStatus: Int?
    /// S3's error code from the response body (`NoSuchKey`, `SlowDown`, …), when there was one.
    public var serverCode: String?

    public init(_ code: Code, location: String, _ message: String, httpStatus: Int? = nil, serverCode: String? = nil) {
        self.code = code
        self.location = location
        self.message = message
        self.httpStatus = httpStatus
        self.serverCode = serverCode
    }

    public var description: String { message.contains(location) ? message : "\(location): \(message)" }

    /// Whether the same request may succeed later unchanged.
    public var isTransient: Bool { code == .transient }
}

/// Removes secrets from text that came from elsewhere (a server's error message, a file's contents): any occurrence of
/// the access key id, the secret key or the session token becomes `[redacted]`.
struct Redaction: Sendable {
    let secrets: [String]

    init(_ credentials: S3Credentials?) {
        secrets = [credentials?.accessKeyId, credentials?.secretAccessKey, credentials?.sessionToken]
            .compactMap { $0 }.filter { $0.count >= 4 }
    }

    func apply(_ text: String) -> String {
        secrets.reduce(text) { $0.replacingOccurrences(of: $1, with: "[redacted]") }
    }
}
