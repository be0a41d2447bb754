import Foundation
import ObjectStorage
import Testing

/// The S3 client against a real S3-compatible server (moto in server mode, started on loopback by scripts/test).
/// Credentials here are test values the server accepts; the tests check they never show in an error.
enum TestServer {
    static let accessKeyId = "AKIAETLTESTKEY7Q2X9Z"
    static let secret = "etlTestSecret/9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c"
    static let token = "etlTestSessionToken+FwoGZXIvYXdzEJr"

    static var endpoint: String {
        guard let endpoint = ProcessInfo.processInfo.environment["ETL_TEST_S3_ENDPOINT"] else {
            fatalError("ETL_TEST_S3_ENDPOINT is not set: run the tests with scripts/test, which starts an S3 server")
        }
        return endpoint
    }

    static func client(multipartThreshold: Int = 64 << 20, retries: S3Client.Retries = .init(attempts: 3, initialDelaySeconds: 0.05)) -> S3Client {
        let credentials = S3Credentials(accessKeyId: accessKeyId, secretAccessKey: secret, sessionToken: token, source: "test")
        return S3Client(configuration: S3Configuration(endpoint: endpoint, region: "us-east-1", pathStyle: true, credentials: credentials),
                        retries: retries, multipartThreshold: multipartThreshold, partSize: 5 << 20)
    }

    /// A new bucket for one test.
    static func bucket(_ client: S3Client) throws -> String {
        let name = "etl-test-\(UUID().uuidString.prefix(12).lowercased())"
        try client.createBucket(name)
        return name
    }

    static func assertNoSecret(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for secret in [accessKeyId, TestServer.secret, token] {
            #expect(!text.contains(secret), "a credential appears in: \(text.prefix(300))", sourceLocation: sourceLocation)
        }
    }
}

@Suite struct S3ClientTests {
    let client = TestServer.client()

    @Test func putGetHeadListDelete() throws {
        let bucket = try TestServer.bucket(client)
        let bytes = Array("hello, object store".utf8)
        try client.put(bytes, bucket: bucket, key: "a/b/one.txt")
        try client.put([1, 2, 3], bucket: bucket, key: "a/two.bin")
        try client.put([], bucket: bucket, key: "c/empty")
        #expect(try client.get(bucket: bucket, key: "a/b/one.txt") == bytes)
        #expect(try client.get(bucket: bucket, key: "a/b/one.txt", range: 7...12) == Array("object".utf8))
        #expect(try client.get(bucket: bucket, key: "c/empty") == [])
        #expect(try client.head(bucket: bucket, key: "a/two.bin")?.size == 3)
        #expect(try client.head(bucket: bucket, key: "a/missing") == nil)

        let all = try client.list(bucket: bucket, prefix: "a/")
        #expect(all.objects.map(\.key) == ["a/b/one.txt", "a/two.bin"])
        #expect(all.objects.map(\.size) == [bytes.count, 3])
        let top = try client.list(bucket: bucket, prefix: "", delimiter: "/")
        #expect(top.objects.isEmpty && top.commonPrefixes == ["a/", "c/"])

        try client.delete(bucket: bucket, keys: ["a/two.bin", "a/never-there"])
        #expect(try client.list(bucket: bucket, prefix: "a/").objects.map(\.key) == ["a/b/one.txt"])
    }

    @Test func keysWithSpacesAndUnicodeRoundTrip() throws {
        let bucket = try TestServer.bucket(client)
        let key = "data set/ünï côdé+plus=eq&amp/x y.json"
        try client.put(Array("{}".utf8), bucket: bucket, key: key)
        #expect(try client.get(bucket: bucket, key: key) == Array("{}".utf8))
        #expect(try client.list(bucket: bucket, prefix: "data set/").objects.map(\.key) == [key])
        try client.copy(bucket: bucket, from: key, to: "copy of/\(key)")
        #expect(try client.get(bucket: bucket, key: "copy of/\(key)") == Array("{}".utf8))
    }

    @Test func listingFollowsContinuationTokens() throws {
        let bucket = try TestServer.bucket(client)
        // More than one page of 1,000.
        let keys = (0..<1_005).map { String(format: "many/%05d", $0) }
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for (index, key) in keys.enumerated() where index % 8 == worker { try! client.put([UInt8(index & 0xff)], bucket: bucket, key: key) }
        }
        let listed = try client.list(bucket: bucket, prefix: "many/")
        #expect(listed.objects.count == keys.count)
        #expect(listed.objects.map(\.key) == keys)
    }

    @Test func conditionalPutWritesOnceAndReportsTheLoser() throws {
        let bucket = try TestServer.bucket(client)
        #expect(try client.put(Array("first".utf8), bucket: bucket, key: "commit", ifNoneMatch: true) == .written)
        #expect(try client.put(Array("second".utf8), bucket: bucket, key: "commit", ifNoneMatch: true) == .alreadyExists)
        #expect(try client.get(bucket: bucket, key: "commit") == Array("first".utf8))

        // Racing writers of one key: exactly one wins.
        let outcomes = NSLock()
        nonisolated(unsafe) var won: [Int] = []
        DispatchQueue.concurrentPerform(iterations: 8) { writer in
            let outcome = try! client.put(Array("writer \(writer)".utf8), bucket: bucket, key: "race", ifNoneMatch: true)
            if outcome == .written { outcomes.withLock { won.append(writer) } }
        }
        #expect(won.count == 1)
        #expect(try client.get(bucket: bucket, key: "race") == Array("writer \(won.first ?? -1)".utf8))
    }

    @Test func uploadsAndDownloadsFilesWithMultipartWhenLarge() throws {
        let small = TestServer.client(multipartThreshold: 6 << 20)
        let bucket = try TestServer.bucket(small)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("s3-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // 12 MiB + 7 bytes: three parts of 5, 5 and 2 MiB + 7.
        var generator = SystemRandomNumberGenerator()
        let large = (0..<(12 << 20) + 7).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let path = directory.appendingPathComponent("large.bin").path
        try Data(large).write(to: URL(fileURLWithPath: path))
        #expect(try small.upload(file: path, bucket: bucket, key: "big/large.bin") == .written)
        let head = try small.head(bucket: bucket, key: "big/large.bin")
        #expect(head?.size == large.count)
        #expect(head?.etag?.hasSuffix("-3\"") == true, "a multipart ETag names its part count: \(head?.etag ?? "none")")
        #expect(try small.multipartUploads(bucket: bucket, prefix: "big/").isEmpty, "no unfinished upload is left")

        let back = directory.appendingPathComponent("back.bin").path
        try small.download(bucket: bucket, key: "big/large.bin", to: back)
        #expect(FileManager.default.contents(atPath: back) == Data(large))

        // A conditional multipart upload of an existing key writes nothing and leaves no parts.
        #expect(try small.upload(file: path, bucket: bucket, key: "big/large.bin", ifNoneMatch: true) == .alreadyExists)
        #expect(try small.multipartUploads(bucket: bucket, prefix: "big/").isEmpty)

        try Data("tiny".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try small.upload(file: path, bucket: bucket, key: "small.bin") == .written)
        #expect(try small.get(bucket: bucket, key: "small.bin") == Array("tiny".utf8))
    }

    @Test func serverSideCopy() throws {
        let bucket = try TestServer.bucket(client)
        try client.put(Array("shard bytes".utf8), bucket: bucket, key: "ds/v1/train/shard.a.mds.zstd")
        try client.copy(bucket: bucket, from: "ds/v1/train/shard.a.mds.zstd", to: "ds/v2/train/shard.a.mds.zstd")
        #expect(try client.get(bucket: bucket, key: "ds/v2/train/shard.a.mds.zstd") == Array("shard bytes".utf8))
        #expect(throws: ObjectStorageError.self) { try client.copy(bucket: bucket, from: "ds/v1/missing", to: "ds/v2/missing") }
    }

    @Test func errorsHaveCodesAndNoSecrets() throws {
        let bucket = try TestServer.bucket(client)
        let missing = #expect(throws: ObjectStorageError.self) { try client.get(bucket: bucket, key: "no/such/key") }
        #expect(missing?.code == .notFound)
        #expect(missing?.description.contains("s3://\(bucket)/no/such/key") == true)
        let noBucket = #expect(throws: ObjectStorageError.self) { try client.get(bucket: "etl-no-such-bucket-x", key: "k") }
        #expect(noBucket?.code == .notFound)
        let downloadMissing = #expect(throws: ObjectStorageError.self) {
            try client.download(bucket: bucket, key: "nothing", to: FileManager.default.temporaryDirectory.appendingPathComponent("x-\(UUID())").path)
        }
        #expect(downloadMissing?.code == .notFound)
        let localMissing = #expect(throws: ObjectStorageError.self) { try client.upload(file: "/nonexistent/file", bucket: bucket, key: "k") }
        #expect(localMissing?.code == .localFile)
        for error in [missing, noBucket, downloadMissing, localMissing].compactMap({ $0 }) {
            TestServer.assertNoSecret(error.description)
            TestServer.assertNoSecret(String(describing: error))
        }
    }

    @Test func unreachableServerIsTransientAfterRetriesWithoutSecrets() throws {
        // A port nothing listens on: connection refused on every attempt.
        let credentials = S3Credentials(accessKeyId: TestServer.accessKeyId, secretAccessKey: TestServer.secret, source: "test")
        let client = S3Client(configuration: S3Configuration(endpoint: "http://127.0.0.1:9", region: "us-east-1", pathStyle: true, credentials: credentials),
                              retries: .init(attempts: 3, initialDelaySeconds: 0.01, maxDelaySeconds: 0.05))
        let started = Date()
        let error = #expect(throws: ObjectStorageError.self) { try client.put([1], bucket: "bucket", key: "k") }
        #expect(error?.code == .transient)
        #expect(error?.message.contains("gave up after 3 attempts") == true, "\(error?.message ?? "")")
        #expect(Date().timeIntervalSince(started) < 10)
        TestServer.assertNoSecret(error.map(String.init(describing:)) ?? "")
    }

    @Test func backoffGrowsCappedWithJitter() {
        let retries = S3Client.Retries(attempts: 6, initialDelaySeconds: 0.5, maxDelaySeconds: 3)
        #expect(retries.delay(beforeRetry: 1, unit: 1) == 0.5)
        #expect(retries.delay(beforeRetry: 3, unit: 1) == 2)
        #expect(retries.delay(beforeRetry: 5, unit: 1) == 3)
        #expect(retries.delay(beforeRetry: 5, unit: 0) == 1.5)
    }
}
