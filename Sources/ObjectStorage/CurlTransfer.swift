internal import CCurl
import Foundation
import SystemIO

/// What a request sends.
enum HTTPBody {
    case none
    case bytes([UInt8])
    /// `length` bytes of a local file from `offset`, read as curl asks for them (a multipart part, a whole shard):
    /// memory stays at curl's buffer, whatever the size.
    case file(path: String, offset: Int, length: Int)
}

/// Where a response body goes.
enum HTTPSink {
    /// Kept in memory up to `limit` bytes (error documents, listings, small files); more fails the transfer.
    case memory(limit: Int)
    /// Streamed into a new file at `path` (replaced if present). An error response's body still goes to memory.
    case file(path: String)
}

struct HTTPRequest {
    var method: String
    var url: String
    var headers: [(String, String)] = []
    var body: HTTPBody = .none
    var sink: HTTPSink = .memory(limit: 64 << 20)
}

struct HTTPResponse {
    var status: Int
    /// Lowercased names.
    var headers: [String: String]
    var body: [UInt8]
}

/// A request that got no HTTP response: the network (retryable) or a local file (not).
enum TransferFailure: Error {
    case network(String)
    case local(ObjectStorageError)
}

/// One libcurl easy handle, owned by this object; a handle keeps its connections open between requests, so the
/// pool lends handles out rather than making one per request.
final class CurlEasy {
    private let handle: UnsafeMutableRawPointer

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    init() {
        Self.globalInit
        guard let handle = curl_easy_init() else { fatalError("curl_easy_init failed: out of memory") }
        self.handle = handle
    }

    deinit { curl_easy_cleanup(handle) }

    /// Sends one request, signed with AWS SigV4 by libcurl (`CURLOPT_AWS_SIGV4`), and collects its response.
    func perform(_ request: HTTPRequest, configuration: S3Configuration, timeouts: S3Client.Timeouts) -> Result<HTTPResponse, TransferFailure> {
        curl_easy_reset(handle)
        let state = TransferState()
        switch request.body {
        case .none: break
        case .bytes(let bytes): state.bodyBytes = bytes
        case .file(let path, let offset, let length):
            do { state.bodyFile = try FileBodySource(path: path, offset: offset, length: length) } catch {
                return .failure(.local(ObjectStorageError(.localFile, location: path, error.description)))
            }
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        let credentials = configuration.credentials
        var headers = request.headers
        // The payload is not hashed into the signature (it may be gigabytes read from a file); S3 accepts that.
        headers.append(("x-amz-content-sha256", "UNSIGNED-PAYLOAD"))
        if let token = credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
        // No `Expect: 100-continue` round trip before each upload.
        headers.append(("Expect", ""))
        for (name, value) in headers { headerList = curl_slist_append(headerList, value.isEmpty ? "\(name):" : "\(name): \(value)") }

        let unmanaged = Unmanaged.passRetained(state)
        defer { unmanaged.release() }
        let context = unmanaged.toOpaque()
        var setup = CURLE_OK
        func set(_ code: CURLcode) { if setup == CURLE_OK { setup = code } }
        set(etl_curl_set_string(handle, CURLOPT_URL, request.url))
        set(etl_curl_set_long(handle, CURLOPT_NOSIGNAL, 1))
        set(etl_curl_set_string(handle, CURLOPT_AWS_SIGV4, "aws:amz:\(configuration.region):s3"))
        set(etl_curl_set_string(handle, CURLOPT_USERNAME, credentials.accessKeyId))
        set(etl_curl_set_string(handle, CURLOPT_PASSWORD, credentials.secretAccessKey))
        set(etl_curl_set_headers(handle, headerList))
        set(etl_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT, timeouts.connectSeconds))
        // A transfer that moves less than 1 byte/s for this long is stalled: fail it (and retry) rather than hang.
        set(etl_curl_set_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1))
        set(etl_curl_set_long(handle, CURLOPT_LOW_SPEED_TIME, timeouts.stallSeconds))
        errorBuffer.withUnsafeMutableBufferPointer { set(etl_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, $0.baseAddress)) }
        set(etl_curl_set_callback(handle, CURLOPT_HEADERFUNCTION, headerCallback))
        set(etl_curl_set_pointer(handle, CURLOPT_HEADERDATA, context))
        set(etl_curl_set_callback(handle, CURLOPT_WRITEFUNCTION, writeCallback))
        set(etl_curl_set_pointer(handle, CURLOPT_WRITEDATA, context))
        switch request.sink {
        case .memory(let limit): state.memoryLimit = limit
        case .file(let path): state.downloadPath = path
        }
        if request.method == "HEAD" {
            set(etl_curl_set_long(handle, CURLOPT_NOBODY, 1))
        } else if request.method == "GET" {
            set(etl_curl_set_long(handle, CURLOPT_HTTPGET, 1))
        } else {
            // PUT and POST (with or without a body) go out as an upload of a known length, read by the callback.
            set(etl_curl_set_long(handle, CURLOPT_UPLOAD, 1))
            set(etl_curl_set_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(state.bodyLength)))
            set(etl_curl_set_callback(handle, CURLOPT_READFUNCTION, readCallback))
            set(etl_curl_set_pointer(handle, CURLOPT_READDATA, context))
            if request.method != "PUT" { set(etl_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, request.method)) }
        }
        guard setup == CURLE_OK else {
            return .failure(.network("libcurl refused an option: \(String(cString: curl_easy_strerror(setup)))"))
        }
        let code = curl_easy_perform(handle)
        // The buffer must not outlive this call in the handle.
        _ = etl_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, nil)
        state.finishDownload()
        if let local = state.localError { return .failure(.local(local)) }
        guard code == CURLE_OK else {
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return .failure(.network(detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail))
        }
        var status = 0
        _ = etl_curl_response_code(handle, &status)
        return .success(HTTPResponse(status: status, headers: state.headers, body: state.memory))
    }
}

/// A part of a local file sent as a request body.
final class FileBodySource {
    let file: SystemFile
    let offset: Int
    let length: Int
    var sent = 0

    init(path: String, offset: Int, length: Int) throws(SystemError) {
        file = try SystemFile.openForReading(path, role: "file to upload")
        self.offset = offset
        self.length = length
    }
}

/// A response body streamed into a local file.
final class FileDownloadSink {
    var file: SystemFile

    init(path: String) throws(SystemError) {
        FileSystem.removeIfPresent(path)
        file = try SystemFile.createExclusive(path, role: "downloaded file")
    }
}

/// What the callbacks of one transfer share with `perform`.
final class TransferState {
    var bodyBytes: [UInt8] = []
    var bodyFile: FileBodySource?
    var bodySent = 0
    var headers: [String: String] = [:]
    var status = 0
    var memory: [UInt8] = []
    var memoryLimit = 0
    var downloadPath: String?
    var download: FileDownloadSink?
    var localError: ObjectStorageError?

    var bodyLength: Int { bodyFile?.length ?? bodyBytes.count }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        if let source = bodyFile {
            let count = min(buffer.count, source.length - source.sent)
            guard count > 0 else { return 0 }
            do {
                let read = try source.file.readSome(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<count]),
                                                    at: source.offset + source.sent, untilFull: true)
                guard read == count else {
                    localError = ObjectStorageError(.localFile, location: source.file.path, "\(source.file.path) became shorter while it was being uploaded")
                    return nil
                }
                source.sent += read
                return read
            } catch {
                localError = ObjectStorageError(.localFile, location: source.file.path, error.description)
                return nil
            }
        }
        let count = min(buffer.count, bodyBytes.count - bodySent)
        bodyBytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[bodySent..<(bodySent + count)])) }
        bodySent += count
        return count
    }

    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        // Only a successful response goes to the file; an error document is kept in memory for its message.
        if let path = downloadPath, (200..<300).contains(status) {
            do {
                if download == nil { download = try FileDownloadSink(path: path) }
                try download!.file.write(bytes)
                return true
            } catch {
                localError = ObjectStorageError(.localFile, location: path, error.description)
                return false
            }
        }
        let limit = downloadPath == nil ? memoryLimit : 1 << 20
        guard memory.count + bytes.count <= limit else {
            localError = ObjectStorageError(.localFile, location: "memory", "a response body was larger than \(limit) bytes")
            return false
        }
        memory.append(contentsOf: bytes)
        return true
    }

    func header(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("HTTP/") {
            // A new response (after `100 Continue`): start over.
            headers = [:]
            status = Int(trimmed.split(separator: " ").dropFirst().first ?? "") ?? 0
            return
        }
        guard let colon = trimmed.firstIndex(of: ":") else { return }
        headers[trimmed[..<colon].lowercased()] = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }

    /// Closes the downloaded file, and creates it empty when a successful response had no body.
    func finishDownload() {
        guard let path = downloadPath, (200..<300).contains(status), localError == nil else { return }
        do {
            if download == nil { download = try FileDownloadSink(path: path) }
            try download!.file.close()
        } catch {
            localError = ObjectStorageError(.localFile, location: path, error.description)
        }
    }
}

private let readCallback: etl_curl_data_callback = { buffer, size, count, context in
    let state = Unmanaged<TransferState>.fromOpaque(context!).takeUnretainedValue()
    guard let read = state.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count)) else {
        return Int(CURL_READFUNC_ABORT)
    }
    return read
}

private let writeCallback: etl_curl_data_callback = { buffer, size, count, context in
    let state = Unmanaged<TransferState>.fromOpaque(context!).takeUnretainedValue()
    return state.receive(UnsafeRawBufferPointer(start: buffer, count: size * count)) ? size * count : 0
}

private let headerCallback: etl_curl_data_callback = { buffer, size, count, context in
    let state = Unmanaged<TransferState>.fromOpaque(context!).takeUnretainedValue()
    state.header(String(decoding: UnsafeRawBufferPointer(start: buffer, count: size * count), as: UTF8.self))
    return size * count
}

/// Easy handles lent to one request at a time, so that concurrent requests (uploads next to a run's own calls) each
/// have theirs and finished ones keep their connections for the next.
final class CurlHandlePool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [CurlEasy] = []

    func withHandle<R>(_ body: (CurlEasy) -> R) -> R {
        let handle = lock.withLock { idle.popLast() } ?? CurlEasy()
        defer { lock.withLock { if idle.count < 8 { idle.append(handle) } } }
        return body(handle)
    }
}
