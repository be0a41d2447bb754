import Dataset
import Foundation
import ObjectStorage
import Testing

/// The dataset tools on a dataset in object storage (a real moto server on loopback), through `--root s3://…`:
/// verify, diff, forget, gc and datasets work as they do on a directory.
@Suite struct S3ToolsTests {
    @Test func verifyDiffForgetGcAndDatasetsWorkOnTheObjectStore() throws {
        let ws = try Workspace("s3tools")
        let s3 = try S3World()
        try seedFeedback(ws, count: 20)
        try ws.writePipeline("fb", s3.pipeline())
        #expect(try ws.etl("run", "fb", environment: s3.environment).status == 0)
        try seedFeedback(ws, from: 21, count: 30)
        #expect(try ws.etl("run", "fb", environment: s3.environment).status == 0)
        func etl(_ arguments: String...) throws -> ProcessResult {
            try runProcess(etlBinary, arguments + ["--root", s3.root], cwd: ws.directory, environment: s3.environment)
        }

        let verify = try etl("verify", "fb", "--all")
        #expect(verify.status == 0, "\(verify.output)")
        let diff = try etl("diff", "fb@v1", "fb@v2", "--json")
        #expect(diff.status == 0, "\(diff.output)")
        #expect(diff.stdout.contains("\"50\"") || diff.stdout.contains("50"), "\(diff.stdout.prefix(300))")
        let datasets = try etl("datasets")
        #expect(datasets.status == 0 && datasets.stdout.contains("fb"), "\(datasets.output)")

        // Forget key 7 (written by v1, in a shard v2 holds its own copy of) from every version.
        let forget = try etl("forget", "fb", "--key", "7", "--reason", "user request")
        #expect(forget.status == 0, "\(forget.output)")
        for version in ["v1", "v2"] {
            let samples = try s3.samples("fb", version)
            #expect(samples["7"] == nil, "key 7 is gone from \(version)")
            #expect(samples.count == (version == "v1" ? 19 : 49))
        }
        #expect(try s3.keys("fb").contains("tombstones.json"))
        #expect(try etl("verify", "fb", "--all").status == 0)
        // The card is rendered again with the redaction, and still loads the version from the bucket.
        let card = String(decoding: try s3.client.get(bucket: s3.bucket, key: "team/datasets/fb/v1/README.md"), as: UTF8.self)
        #expect(card.contains("user request") && card.contains("remote=\"s3://\(s3.bucket)/team/datasets/fb/v1\""), "\(card)")

        // A shard damaged in the bucket: verify names it and exits 9.
        let store = s3.store("fb")
        let shard = try #require(store.manifest(of: "v2").splits["train"]?.shards.first)
        let key = "team/datasets/fb/v2/train/\(shard.basename)"
        var bytes = try s3.client.get(bucket: s3.bucket, key: key)
        bytes[bytes.count / 2] ^= 0xff
        try s3.client.put(bytes, bucket: s3.bucket, key: key)
        let damaged = try etl("verify", "fb@v2")
        #expect(damaged.status == 9, "\(damaged.output)")
        #expect(damaged.output.contains(shard.basename), "\(damaged.output)")

        // gc keeps the newest version; v1's objects and commit record go.
        let gc = try etl("gc", "fb", "--keep", "1")
        #expect(gc.status == 0, "\(gc.output)")
        #expect(try store.versions() == ["v2"])
        #expect(try !s3.keys("fb").contains { $0.hasPrefix("v1/") || $0 == "_commits/v1.json" })
        for output in [verify, diff, datasets, forget, damaged, gc] { S3World.expectNoSecret(output.output, in: "tool output") }
    }
}
