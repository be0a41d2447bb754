import Foundation

extension S3Client {
    /// CreateMultipartUpload, one UploadPart per `partSize` bytes read straight from the file, then
    /// CompleteMultipartUpload (with `If-None-Match: *` when asked). Parts go one at a time, so memory stays at libcurl's
    /// buffer; any failure aborts the upload so no parts are left behind to be billed.
    func multipartUpload(file path: String, size: Int, bucket: String, key: String, ifNoneMatch: Bool) throws(ObjectStorageError) -> PutOutcome {
        let location = Self.location(bucket, key)
        var create = HTTPRequest(method: "POST", url: configuration.url(bucket: bucket, key: key, query: [("uploads", "")]))
        create.headers.append(("Content-Type", "application/octet-stream"))
        let created = try send(create, location: location)
        guard let uploadId = S3XMLElement.parse(created.body)?.value("UploadId") else {
            throw ObjectStorageError(.invalidRequest, location: location, "the server did not start a multipart upload of \(location)")
        }
        do throws(ObjectStorageError) {
            var parts: [(number: Int, etag: String)] = []
            var offset = 0
            while offset < size {
                let number = parts.count + 1
                let length = min(partSize, size - offset)
                let request = HTTPRequest(
                    method: "PUT",
                    url: configuration.url(bucket: bucket, key: key, query: [("partNumber", "\(number)"), ("uploadId", uploadId)]),
                    body: .file(path: path, offset: offset, length: length))
                let response = try send(request, location: location)
                guard let etag = response.headers["etag"] else {
                    throw ObjectStorageError(.invalidRequest, location: location, "the server returned no ETag for part \(number) of \(location)")
                }
                parts.append((number, etag))
                offset += length
            }
            let body = "<CompleteMultipartUpload>"
                + parts.map { "<Part><PartNumber>\($0.number)</PartNumber><ETag>\(S3XMLWriter.escape($0.etag))</ETag></Part>" }.joined()
                + "</CompleteMultipartUpload>"
            var complete = HTTPRequest(method: "POST", url: configuration.url(bucket: bucket, key: key, query: [("uploadId", uploadId)]),
                                       body: .bytes(Array(body.utf8)))
            complete.headers.append(("Content-Type", "application/xml"))
            if ifNoneMatch { complete.headers.append(("If-None-Match", "*")) }
            let outcome = try conditional { () throws(ObjectStorageError) in
                do throws(ObjectStorageError) {
                    let response = try send(complete, location: location)
                    if let failure = S3XMLElement.errorDocument(response.body) {
                        throw classify(status: 500, code: failure.code, message: failure.message, method: "POST", location: location)
                    }
                } catch where error.serverCode == "NoSuchUpload" {
                    // A completion the server carried out but whose response was lost is retried, and S3 then answers
                    // that the upload does not exist (it became the object). The object at the key with this size is
                    // that upload (keys of large objects are content hashes); anything else is a real failure.
                    guard let object = try head(bucket: bucket, key: key), object.size == size else { throw error }
                }
            }
            if outcome == .alreadyExists { abortMultipartUpload(bucket: bucket, key: key, uploadId: uploadId) }
            return outcome
        } catch {
            abortMultipartUpload(bucket: bucket, key: key, uploadId: uploadId)
            throw error
        }
    }

    /// Best effort: an upload that cannot be aborted now is found by `multipartUploads(bucket:prefix:)` later.
    public func abortMultipartUpload(bucket: String, key: String, uploadId: String) {
        let request = HTTPRequest(method: "DELETE", url: configuration.url(bucket: bucket, key: key, query: [("uploadId", uploadId)]))
        _ = try? send(request, location: Self.location(bucket, key))
    }

    /// Unfinished multipart uploads under `prefix` (their parts cost storage until aborted).
    public func multipartUploads(bucket: String, prefix: String) throws(ObjectStorageError) -> [(key: String, uploadId: String)] {
        var uploads: [(key: String, uploadId: String)] = []
        var markers: (key: String, uploadId: String)?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.uploadId)] }
            let location = Self.location(bucket, prefix)
            let response = try send(HTTPRequest(method: "GET", url: configuration.url(bucket: bucket, key: nil, query: query)), location: location)
            guard let root = S3XMLElement.parse(response.body) else { break }
            for upload in root.all("Upload") {
                if let key = upload.value("Key"), let id = upload.value("UploadId") { uploads.append((key, id)) }
            }
            markers = root.value("IsTruncated") == "true"
                ? (root.value("NextKeyMarker") ?? "", root.value("NextUploadIdMarker") ?? "") : nil
        } while markers != nil
        return uploads
    }
}
