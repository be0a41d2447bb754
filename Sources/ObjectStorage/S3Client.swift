import Foundation

/// An S3 client over libcurl: libcurl speaks HTTP(S), keeps connections, and signs every request with AWS Signature
/// Version 4 (`CURLOPT_AWS_SIGV4`); this type adds S3's operations, its error documents, and retries. Synchronous:
/// a call blocks its thread until the request (with its retries) is done; calls from several threads run in
/// parallel, each on an easy handle of its own.
public final class S3Client: Sendable {
    public struct Timeouts: Sendable {
        public var connectSeconds: Int
        /// A transfer with no progress for this long is a timeout (retried).
        public var stallSeconds: Int
        public init(connectSeconds: Int = 10, stallSeconds: Int = 60) {
            self.connectSeconds = connectSeconds
            self.stallSeconds = stallSeconds
        }
    }

    /// Exponential backoff with jitter for 5xx, throttling (429, SlowDown), timeouts and connection errors.
    public struct Retries: Sendable {
        /// Tries in all, the first included.
        public var attempts: Int
        public var initialDelaySeconds: Double
        public var maxDelaySeconds: Double
        public init(attempts: Int = 6, initialDelaySeconds: Double = 0.25, maxDelaySeconds: Double = 20) {
            self.attempts = attempts
            self.initialDelaySeconds = initialDelaySeconds
            self.maxDelaySeconds = maxDelaySeconds
        }

        /// initial × 2^(n−1), capped, times a random factor in [0.5, 1] so that clients failing together spread out.
        public func delay(beforeRetry n: Int, unit: Double = Double.random(in: 0...1)) -> Double {
            let exponential = initialDelaySeconds * Double(1 << min(max(n - 1, 0), 30))
            return min(maxDelaySeconds, exponential) * (0.5 + 0.5 * min(max(unit, 0), 1))
        }
    }

    public struct ObjectInfo: Sendable, Equatable {
        public var key: String
        public var size: Int
        public var etag: String?
        public var lastModified: String?
    }

    public enum PutOutcome: Sendable, Equatable {
        case written
        /// `If-None-Match: *` found the key already there (412): nothing was written.
        case alreadyExists
    }

    public let configuration: S3Configuration
    public let retries: Retries
    public let timeouts: Timeouts
    /// Files at least this large go up as a multipart upload of `partSize` parts.
    public let multipartThreshold: Int
    public let partSize: Int
    let pool = CurlHandlePool()
    let redaction: Redaction

    public init(configuration: S3Configuration, retries: Retries = Retries(), timeouts: Timeouts = Timeouts(),
                multipartThreshold: Int = 64 << 20, partSize: Int = 16 << 20) {
        self.configuration = configuration
        self.retries = retries
        self.timeouts = timeouts
        self.multipartThreshold = max(multipartThreshold, 5 << 20)
        // S3's smallest part is 5 MiB (all but the last); its largest count is 10,000.
        self.partSize = max(partSize, 5 << 20)
        redaction = Redaction(configuration.credentials)
    }

    static func location(_ bucket: String, _ key: String?) -> String { key.map { "s3://\(bucket)/\($0)" } ?? "s3://\(bucket)" }

    // MARK: - Objects

    /// A whole object into memory (manifests, indexes, records), or a byte range of it.
    public func get(bucket: String, key: String, range: ClosedRange<Int>? = nil, limit: Int = 256 << 20) throws(ObjectStorageError) -> [UInt8] {
        var request = HTTPRequest(method: "GET", url: configuration.url(bucket: bucket, key: key), sink: .memory(limit: limit))
        if let range { request.headers.append(("Range", "bytes=\(range.lowerBound)-\(range.upperBound)")) }
        return try send(request, location: Self.location(bucket, key)).body
    }

    /// An object streamed into a local file (created or replaced), in bounded memory.
    public func download(bucket: String, key: String, to path: String) throws(ObjectStorageError) {
        _ = try send(HTTPRequest(method: "GET", url: configuration.url(bucket: bucket, key: key), sink: .file(path: path)),
                     location: Self.location(bucket, key))
    }

    /// The object's size and ETag; nil when there is no such key.
    public func head(bucket: String, key: String) throws(ObjectStorageError) -> ObjectInfo? {
        do {
            let response = try send(HTTPRequest(method: "HEAD", url: configuration.url(bucket: bucket, key: key)),
                                    location: Self.location(bucket, key))
            return ObjectInfo(key: key, size: Int(response.headers["content-length"] ?? "") ?? 0,
                              etag: response.headers["etag"], lastModified: response.headers["last-modified"])
        } catch where error.code == .notFound {
            return nil
        }
    }

    /// Writes `bytes` as the object; with `ifNoneMatch` only if the key does not exist yet (`If-None-Match: *`), which
    /// is the one compare-and-swap S3 offers: of two such writes of one key, exactly one gets `.written`.
    @discardableResult
    public func put(_ bytes: [UInt8], bucket: String, key: String, ifNoneMatch: Bool = false,
                    contentType: String = "application/octet-stream") throws(ObjectStorageError) -> PutOutcome {
        var request = HTTPRequest(method: "PUT", url: configuration.url(bucket: bucket, key: key), body: .bytes(bytes))
        request.headers.append(("Content-Type", contentType))
        if ifNoneMatch { request.headers.append(("If-None-Match", "*")) }
        return try conditional { () throws(ObjectStorageError) in _ = try send(request, location: Self.location(bucket, key)) }
    }

    /// Uploads a local file as the object, reading it as it goes: one PUT below `multipartThreshold`, else a multipart
    /// upload of `partSize` parts (memory stays at a part's read buffer, whatever the size).
    @discardableResult
    public func upload(file path: String, bucket: String, key: String, ifNoneMatch: Bool = false) throws(ObjectStorageError) -> PutOutcome {
        let size: Int
        do { size = try Self.fileSize(path) } catch { throw error }
        if size >= multipartThreshold {
            return try multipartUpload(file: path, size: size, bucket: bucket, key: key, ifNoneMatch: ifNoneMatch)
        }
        var request = HTTPRequest(method: "PUT", url: configuration.url(bucket: bucket, key: key),
                                  body: .file(path: path, offset: 0, length: size))
        request.headers.append(("Content-Type", "application/octet-stream"))
        if ifNoneMatch { request.headers.append(("If-None-Match", "*")) }
        return try conditional { () throws(ObjectStorageError) in _ = try send(request, location: Self.location(bucket, key)) }
    }

    /// Removes the object; no error when it is already gone (S3's DELETE is idempotent).
    public func delete(bucket: String, key: String) throws(ObjectStorageError) {
        do {
            _ = try send(HTTPRequest(method: "DELETE", url: configuration.url(bucket: bucket, key: key)), location: Self.location(bucket, key))
        } catch where error.code == .notFound {}
    }

    /// Removes each object (one request each: the batch call needs a Content-MD5 some servers treat differently, and
    /// datasets delete few objects at a time).
    public func delete(bucket: String, keys: [String]) throws(ObjectStorageError) {
        for key in keys { try delete(bucket: bucket, key: key) }
    }

    /// Server-side copy (the bytes never pass through this process), up to S3's 5 GiB limit for one copy; a shard is
    /// under 4 GiB by the MDS format's 32-bit offsets.
    public func copy(bucket: String, from sourceKey: String, to key: String) throws(ObjectStorageError) {
        var request = HTTPRequest(method: "PUT", url: configuration.url(bucket: bucket, key: key))
        request.headers.append(("x-amz-copy-source", "/\(bucket)/\(S3Encoding.path(sourceKey))"))
        let location = Self.location(bucket, key)
        let response = try send(request, location: location)
        // A copy can fail after S3 sent 200: the error is then in the body.
        if let failure = S3XMLElement.errorDocument(response.body) {
            throw classify(status: 500, code: failure.code, message: failure.message, method: "COPY", location: location)
        }
    }

    /// Every object under `prefix` (ListObjectsV2, following continuation tokens); with a `delimiter`, keys below the
    /// next delimiter are rolled up into `commonPrefixes`.
    public func list(bucket: String, prefix: String, delimiter: String? = nil) throws(ObjectStorageError) -> (objects: [ObjectInfo], commonPrefixes: [String]) {
        var objects: [ObjectInfo] = []
        var prefixes: [String] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let delimiter { query.append(("delimiter", delimiter)) }
            if let token { query.append(("continuation-token", token)) }
            let location = Self.location(bucket, prefix)
            let response = try send(HTTPRequest(method: "GET", url: configuration.url(bucket: bucket, key: nil, query: query)), location: location)
            guard let root = S3XMLElement.parse(response.body), root.name == "ListBucketResult" else {
                throw ObjectStorageError(.invalidRequest, location: location, "the server's answer to a listing of \(location) is not a ListBucketResult")
            }
            for entry in root.all("Contents") {
                guard let key = entry.value("Key") else { continue }
                objects.append(ObjectInfo(key: key, size: Int(entry.value("Size") ?? "") ?? 0, etag: entry.value("ETag"),
                                          lastModified: entry.value("LastModified")))
            }
            prefixes += root.all("CommonPrefixes").compactMap { $0.value("Prefix") }
            token = root.value("IsTruncated") == "true" ? root.value("NextContinuationToken") : nil
        } while token != nil
        return (objects, prefixes)
    }

    /// Creates the bucket; no error when this account already owns it.
    public func createBucket(_ bucket: String) throws(ObjectStorageError) {
        var body: [UInt8] = []
        if configuration.region != "us-east-1" {
            body = Array("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(configuration.region)</LocationConstraint></CreateBucketConfiguration>".utf8)
        }
        do {
            _ = try send(HTTPRequest(method: "PUT", url: configuration.url(bucket: bucket, key: nil), body: .bytes(body)),
                         location: Self.location(bucket, nil))
        } catch where error.serverCode == "BucketAlreadyOwnedByYou" {}
    }

    // MARK: - Requests

    /// Maps a 412 to `.alreadyExists`.
    func conditional(_ body: () throws(ObjectStorageError) -> Void) throws(ObjectStorageError) -> PutOutcome {
        do { try body() } catch where error.code == .preconditionFailed { return .alreadyExists }
        return .written
    }

    /// Sends a request until it gets a 2xx response (returned), a failure that will not pass (thrown), or runs out of
    /// retries for one that might (thrown as `.transient`).
    func send(_ request: HTTPRequest, location: String) throws(ObjectStorageError) -> HTTPResponse {
        var attempt = 1
        while true {
            let failure: ObjectStorageError
            switch pool.withHandle({ $0.perform(request, configuration: configuration, timeouts: timeouts) }) {
            case .success(let response) where (200..<300).contains(response.status):
                return response
            case .success(let response):
                let document = S3XMLElement.errorDocument(response.body)
                failure = classify(status: response.status, code: document?.code, message: document?.message,
                                   method: request.method, location: location)
            case .failure(.local(let error)):
                throw ObjectStorageError(error.code, location: error.location, redaction.apply(error.message))
            case .failure(.network(let detail)):
                failure = ObjectStorageError(.transient, location: location,
                                             "\(request.method) \(location): \(redaction.apply(detail)) (at \(configuration.endpoint))")
            }
            guard failure.isTransient, attempt < retries.attempts else {
                if failure.isTransient, retries.attempts > 1 {
                    var final = failure
                    final.message += " — gave up after \(attempt) attempts"
                    throw final
                }
                throw failure
            }
            Thread.sleep(forTimeInterval: retries.delay(beforeRetry: attempt))
            attempt += 1
        }
    }

    func classify(status: Int, code: String?, message: String?, method: String, location: String) -> ObjectStorageError {
        let kind: ObjectStorageError.Code
        switch (status, code ?? "") {
        case (_, "SlowDown"), (_, "RequestTimeout"), (_, "InternalError"), (_, "ServiceUnavailable"), (_, "ConditionalRequestConflict"),
             (429, _), (500...599, _), (408, _):
            kind = .transient
        case (404, _), (_, "NoSuchKey"), (_, "NoSuchBucket"), (_, "NoSuchUpload"): kind = .notFound
        case (412, _), (_, "PreconditionFailed"): kind = .preconditionFailed
        case (401, _), (403, _): kind = .accessDenied
        default: kind = .invalidRequest
        }
        let what = [code, message].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
        // The endpoint names the object store (the location names only the bucket and key), as for network failures.
        let text = "\(method) \(location): HTTP \(status)\(what.isEmpty ? "" : " \(what)") (at \(configuration.endpoint))"
        return ObjectStorageError(kind, location: location, redaction.apply(text), httpStatus: status, serverCode: code)
    }

    static func fileSize(_ path: String) throws(ObjectStorageError) -> Int {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = (attributes[.size] as? NSNumber)?.intValue else {
            throw ObjectStorageError(.localFile, location: path, "cannot upload \(path): it does not exist or cannot be read")
        }
        return size
    }
}
