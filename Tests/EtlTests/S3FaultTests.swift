import Dataset
import Foundation
import ObjectStorage
import Testing

/// The real `etl` publishing to S3 through a fault-injecting proxy (scripts/lib/s3_fault_proxy.py) in front of the
/// suite's moto server: transient faults are retried and publish what an undisturbed run publishes; faults that do
/// not pass fail the run with the write code (5), leave no version and no unfinished multipart upload, and the next
/// run publishes.
@Suite struct S3FaultTests {
    /// The pipeline of `S3World.pipeline()` with its endpoint in the `storage:` section (the proxy's).
    static func pipeline(_ s3: S3World, name: String, endpoint: String, yaml: String = basicPipeline) -> String {
        s3.pipeline(yaml.replacingOccurrences(of: "name: fb", with: "name: \(name)"))
            + "\nstorage:\n  endpoint_url: \(endpoint)\n  path_style: true\n"
    }

    /// The bytes of every object of a version's splits (index.json and shards), by path below the version.
    static func splitObjects(_ s3: S3World, _ dataset: String, _ version: String) throws -> [String: [UInt8]] {
        let prefix = "team/datasets/\(dataset)/\(version)/"
        var objects: [String: [UInt8]] = [:]
        for object in try s3.client.list(bucket: s3.bucket, prefix: prefix).objects {
            let path = String(object.key.dropFirst(prefix.count))
            guard path.contains("/") else { continue }
            objects[path] = try s3.client.get(bucket: s3.bucket, key: object.key)
        }
        return objects
    }

    @Test(.timeLimit(.minutes(5)))
    func transientFaultsOnShardsAndTheCommitRecordAreRetriedAndPublishTheSameVersion() throws {
        let ws = try Workspace("s3fretry")
        let s3 = try S3World()
        let proxy = try S3FaultProxy(upstream: s3.endpoint)
        defer { proxy.stop() }
        try seedFeedback(ws, count: 60)
        try ws.writePipeline("calm", Self.pipeline(s3, name: "calm", endpoint: s3.endpoint))
        let calm = try ws.etl("run", "calm", environment: s3.environment)
        #expect(calm.status == 0, "\(calm.output)")

        try proxy.set([
            .init(kind: .putObject, keyContains: "/fb/v1/train/", count: 2, action: .slowDown),
            .init(kind: .putObject, keyContains: "/fb/v1/val/", count: 1, action: .reset),
            .init(kind: .putObject, keyContains: "/fb/v1/test/", count: 1, action: .internalError),
            .init(kind: .putObject, keyContains: "/fb/_commits/", count: 2, action: .slowDown),
        ])
        try ws.writePipeline("fb", Self.pipeline(s3, name: "fb", endpoint: proxy.endpoint))
        let run = try ws.etl("run", "fb", environment: s3.environment)
        #expect(run.status == 0, "\(run.output)")
        let faulted = proxy.requests().filter { $0.fault != nil }
        #expect(faulted.count == 6, "faults injected: \(faulted.map { "\($0.kind) \($0.path) \($0.fault ?? "")" })")
        #expect(faulted.filter { $0.path.contains("/_commits/") }.count == 2)
        #expect(try s3.store("fb").versions() == ["v1"])
        let published = try Self.splitObjects(s3, "fb", "v1")
        let undisturbed = try Self.splitObjects(s3, "calm", "v1")
        #expect(!published.isEmpty && published == undisturbed,
                "index.json and shards differ from the undisturbed run's: \(published.count) vs \(undisturbed.count) objects")
        #expect(try s3.samples("fb", "v1").count == 60)
        #expect(try !s3.keys("fb").contains { $0.hasPrefix("_claims/") || $0 == "_lock.json" })
    }

    @Test(.timeLimit(.minutes(5)))
    func everyPutFailingFromMidRunOnExits5WithNoVersionAndTheNextRunPublishes() throws {
        let ws = try Workspace("s3fdown")
        let s3 = try S3World()
        let proxy = try S3FaultProxy(upstream: s3.endpoint)
        defer { proxy.stop() }
        try seedFeedback(ws, count: 60)
        // The lock and the claim go through, then two uploads; every PUT after them fails.
        try proxy.set([.init(kind: .putObject, after: 4, action: .slowDown)])
        try ws.writePipeline("fb", Self.pipeline(s3, name: "fb", endpoint: proxy.endpoint))
        let failed = try ws.etl("run", "fb", environment: s3.environment)
        #expect(failed.status == 5, "\(failed.output)")
        #expect(failed.stderr.contains("s3://\(s3.bucket)/team/datasets/fb/v1/"), "the object: \(failed.stderr.suffix(1500))")
        #expect(failed.stderr.contains(proxy.endpoint), "the object store: \(failed.stderr.suffix(1500))")
        #expect(failed.stderr.contains("503 SlowDown") && failed.stderr.contains("gave up after 6 attempts"), "\(failed.stderr.suffix(1500))")
        S3World.expectNoSecret(failed.output, in: "the failed run's output")
        #expect(proxy.faults("PutObject") >= 6, "the uploads were retried")

        // No version: not by the store, not by `etl datasets`, no commit record.
        #expect(try s3.store("fb").versions().isEmpty)
        #expect(try !s3.keys("fb").contains { $0.hasPrefix("_commits/") })
        let datasets = try ws.etl("datasets", "--root", s3.root, "--json", environment: s3.environment)
        #expect(datasets.status == 0 && !datasets.stdout.contains("\"v1\""), "\(datasets.output)")

        try proxy.set([])
        let next = try ws.etl("run", "fb", environment: s3.environment)
        #expect(next.status == 0, "\(next.output)")
        let store = s3.store("fb")
        #expect(try store.versions() == ["v1"])
        #expect(try store.manifest(of: "v1").counts.newSamples == 60)
        #expect(try s3.samples("fb", "v1").count == 60)
        let keys = try s3.keys("fb")
        #expect(!keys.contains { $0.hasPrefix("_claims/") || $0 == "_lock.json" || $0.hasPrefix("v2/") })
        #expect(try s3.client.multipartUploads(bucket: s3.bucket, prefix: "team/datasets/fb/").isEmpty)
    }

    /// Rows of 1 MiB each for user 1: with compression off and a large size limit, one shard of `rows` MiB.
    static func seedBig(_ ws: Workspace, rows: Int) throws {
        try ws.sql("CREATE TABLE $S.big (id bigint PRIMARY KEY, user_id bigint NOT NULL, payload bytea NOT NULL)")
        try ws.sql("INSERT INTO $S.big SELECT g, 1, decode(repeat(md5(g::text), 65536), 'hex') FROM generate_series(1, \(rows)) AS g")
    }

    static let bigPipeline = """
        name: fb
        source:
          query: SELECT id, user_id, payload FROM $S.big
          cursor_column: id
          key_column: id
        columns:
          - name: payload
        split:
          group_column: user_id
          seed: s1
          ratios: {train: 1.0}
        shards:
          size_limit: 256MiB
          compression: none
        """

    /// A multipart upload in 5 MiB parts (S3's smallest) for a shard of 12 MiB: 3 parts.
    static let multipartEnvironment = ["ETL_TEST_S3_MULTIPART_THRESHOLD": "\(5 << 20)", "ETL_TEST_S3_PART_SIZE": "\(5 << 20)"]

    @Test(.timeLimit(.minutes(5)))
    func aMultipartUploadRetriesFailedPartsAndAbortsWhenAPartFailsForGood() throws {
        let ws = try Workspace("s3fmpu")
        let s3 = try S3World()
        let proxy = try S3FaultProxy(upstream: s3.endpoint)
        defer { proxy.stop() }
        try Self.seedBig(ws, rows: 12)
        let environment = s3.environment.merging(Self.multipartEnvironment) { $1 }

        // Transient: parts answered 503, reset and 500, the completion 503; all retried.
        try proxy.set([
            .init(kind: .uploadPart, count: 1, action: .slowDown),
            .init(kind: .uploadPart, after: 1, count: 1, action: .reset),
            .init(kind: .uploadPart, after: 2, count: 1, action: .internalError),
            .init(kind: .completeMultipartUpload, count: 1, action: .slowDown),
            // Then the completion done by the server but its response lost; the retry is answered as S3 answers it
            // (the upload is gone: it became the object), and the object at the key is taken as the upload's.
            .init(kind: .completeMultipartUpload, after: 1, count: 1, action: .resetAfterForwarding),
            .init(kind: .completeMultipartUpload, after: 2, count: 1, action: .noSuchUpload),
        ])
        try ws.writePipeline("fb", Self.pipeline(s3, name: "fb", endpoint: proxy.endpoint, yaml: Self.bigPipeline))
        let run = try ws.etl("run", "fb", environment: environment)
        #expect(run.status == 0, "\(run.output)")
        #expect(proxy.faults("UploadPart") == 3 && proxy.faults("CompleteMultipartUpload") == 3,
                "\(proxy.requests().filter { $0.fault != nil }.map { "\($0.kind) \($0.fault ?? "")" })")
        #expect(proxy.requests().filter { $0.kind == "CreateMultipartUpload" }.count == 1, "the shard went up as one multipart upload")
        let store = s3.store("fb")
        #expect(try store.versions() == ["v1"])
        let shards = try store.manifest(of: "v1").splits["train"]?.shards ?? []
        #expect(shards.count == 1 && (shards.first?.bytes ?? 0) > 12 << 20, "\(shards.map(\.bytes))")
        #expect(try s3.samples("fb", "v1").count == 12)
        #expect(try s3.client.multipartUploads(bucket: s3.bucket, prefix: "team/datasets/fb/").isEmpty)

        // For good: every part from the second on fails. The upload is aborted, the run exits 5, v2 is not published.
        try ws.sql("INSERT INTO $S.big SELECT g, 1, decode(repeat(md5(g::text), 65536), 'hex') FROM generate_series(13, 24) AS g")
        try proxy.set([.init(kind: .uploadPart, after: 1, action: .slowDown)])
        let failed = try ws.etl("run", "fb", environment: environment)
        #expect(failed.status == 5, "\(failed.output)")
        #expect(failed.stderr.contains("s3://\(s3.bucket)/team/datasets/fb/v2/train/") && failed.stderr.contains("gave up after 6 attempts"),
                "\(failed.stderr.suffix(1500))")
        S3World.expectNoSecret(failed.output, in: "the failed run's output")
        #expect(proxy.requests().contains { $0.kind == "AbortMultipartUpload" }, "the upload was aborted")
        #expect(try s3.client.multipartUploads(bucket: s3.bucket, prefix: "team/datasets/fb/").isEmpty, "no unfinished multipart upload")
        #expect(try store.versions() == ["v1"])

        // The completion failing for good: aborted too.
        try proxy.set([.init(kind: .completeMultipartUpload, action: .internalError)])
        let incomplete = try ws.etl("run", "fb", environment: environment)
        #expect(incomplete.status == 5, "\(incomplete.output)")
        #expect(try s3.client.multipartUploads(bucket: s3.bucket, prefix: "team/datasets/fb/").isEmpty, "no unfinished multipart upload")
        #expect(try store.versions() == ["v1"])

        // NoSuchUpload with no object at the key (the upload really is gone, e.g. aborted by a lifecycle rule): a failure.
        try proxy.set([.init(kind: .completeMultipartUpload, action: .noSuchUpload)])
        let gone = try ws.etl("run", "fb", environment: environment)
        #expect(gone.status == 5 && gone.stderr.contains("NoSuchUpload"), "\(gone.status) \(gone.output)")
        #expect(try store.versions() == ["v1"])

        // Faults off but one: the server-side copy of v1's shard into v2 answered 503 once, and retried.
        try proxy.set([.init(kind: .copyObject, count: 1, action: .slowDown)])
        let next = try ws.etl("run", "fb", environment: environment)
        #expect(next.status == 0, "\(next.output)")
        #expect(proxy.faults("CopyObject") == 1)
        #expect(try store.versions() == ["v1", "v2"])
        #expect(try s3.samples("fb", "v2").count == 24)
    }
}
