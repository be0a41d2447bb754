import Dataset
import Foundation
import MDS
import ObjectStorage
import Testing

/// `etl run` publishing to S3-compatible object storage (a real moto server on loopback): versions, incremental
/// versions that copy their parent's shards server-side, a run killed before its commit record, two runs racing for
/// one version, and credentials that never show.
@Suite struct S3PublishTests {
    @Test func publishesAVersionThenAnIncrementalOneThatSharesTheParentsShards() throws {
        let ws = try Workspace("s3pub")
        let s3 = try S3World()
        try seedFeedback(ws, count: 20)
        try ws.writePipeline("fb", s3.pipeline())
        let first = try ws.etl("run", "fb", environment: s3.environment)
        #expect(first.status == 0, "\(first.output)")
        #expect(try s3.store("fb").versions() == ["v1"])
        let keys = try s3.keys("fb")
        for expected in ["_commits/v1.json", "v1/manifest.json", "v1/README.md", "v1/rows.bin", "v1/train/index.json", "LATEST"] {
            #expect(keys.contains(expected), "\(expected) is missing from \(keys.count) keys")
        }
        #expect(!keys.contains { $0.hasPrefix("_claims/") }, "the claim is removed after the commit")
        #expect(!keys.contains("_lock.json"), "the lock is released")
        #expect(keys.filter { $0.hasPrefix("_runs/") }.count == 1, "one run record")
        #expect(try s3.samples("fb", "v1").count == 20)
        let card = String(decoding: try s3.client.get(bucket: s3.bucket, key: "team/datasets/fb/v1/README.md"), as: UTF8.self)
        #expect(card.contains("StreamingDataset(remote=\"\(s3.root)/fb/v1\""), "the card loads the version from S3")

        try seedFeedback(ws, from: 21, count: 30)
        let second = try ws.etl("run", "fb", environment: s3.environment)
        #expect(second.status == 0, "\(second.output)")
        let store = s3.store("fb")
        #expect(try store.versions() == ["v1", "v2"])
        let manifest = try store.manifest(of: "v2")
        #expect(manifest.parent == "v1" && manifest.counts.newSamples == 30)
        // Every shard v2 lists is under v2/, those of v1 with the same size (copied on the server, not re-sent).
        let parent = try store.manifest(of: "v1")
        for (split, entry) in manifest.splits {
            for shard in entry.shards {
                let head = try s3.client.head(bucket: s3.bucket, key: "team/datasets/fb/v2/\(split)/\(shard.basename)")
                #expect(head?.size == shard.bytes, "\(split)/\(shard.basename)")
                if let old = parent.splits[split]?.shards.first(where: { $0.basename == shard.basename }) {
                    #expect(shard.createdBy == "v1" && old.bytes == shard.bytes)
                }
            }
        }
        #expect(manifest.splits.values.flatMap(\.shards).contains { $0.createdBy == "v1" }, "v2 shares v1's shards")
        let samples = try s3.samples("fb", "v2")
        #expect(samples.count == 50)
        #expect(String(decoding: try s3.client.get(bucket: s3.bucket, key: "team/datasets/fb/LATEST"), as: UTF8.self) == "v2\n")

        // Nothing new: exit 0, no version, no claim left.
        let third = try ws.etl("run", "fb", environment: s3.environment)
        #expect(third.status == 0 && third.output.contains("nothing new"), "\(third.output)")
        #expect(try store.versions() == ["v1", "v2"])
        #expect(try !s3.keys("fb").contains { $0.hasPrefix("_claims/") || $0.hasPrefix("v3/") })

        // The ledger and the readers work on the object store too.
        let status = try ws.etl("status", "fb", "--json", environment: s3.environment)
        #expect(status.status == 0, "\(status.output)")
        #expect(status.stdout.components(separatedBy: "\"outcome\"").count - 1 == 3, "three runs recorded: \(status.stdout.prefix(400))")
        let inspect = try ws.etl("inspect", "fb@v2", "--root", s3.root, environment: s3.environment)
        #expect(inspect.status == 0 && inspect.stdout.contains("v2"), "\(inspect.output)")
    }

    @Test func storageSectionGivesTheEndpointAndIsValidated() throws {
        let ws = try Workspace("s3cfg")
        let s3 = try S3World()
        try seedFeedback(ws, count: 5)
        var environment = s3.environment
        environment["AWS_ENDPOINT_URL"] = ""
        try ws.writePipeline("fb", s3.pipeline() + "\nstorage:\n  endpoint_url: \(s3.endpoint)\n  region: us-east-1\n  path_style: true\n")
        let run = try ws.etl("run", "fb", environment: environment)
        #expect(run.status == 0, "\(run.output)")
        #expect(try s3.store("fb").versions() == ["v1"])

        try ws.writePipeline("bad", s3.pipeline().replacingOccurrences(of: "name: fb", with: "name: bad")
            + "\nstorage:\n  endpoint_url: ftp://example\n  regoin: x\n  path_style: maybe\n")
        let bad = try ws.etl("validate", "--offline", "bad", environment: environment)
        #expect(bad.status == 2, "\(bad.output)")
        #expect(bad.stderr.contains("bad.yaml:") && bad.stderr.contains("storage.endpoint_url 'ftp://example'"), "\(bad.stderr)")
        #expect(bad.stderr.contains("did you mean 'region'"), "\(bad.stderr)")

        // No credentials anywhere: a configuration error naming where they were looked for.
        let none = try ws.etl("run", "fb", environment: ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                                                         "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_CONFIG_FILE": "/nonexistent/config"])
        #expect(none.status == 2, "\(none.output)")
        #expect(none.stderr.contains("no S3 credentials"), "\(none.stderr)")
    }

    @Test func aRunKilledBeforeItsCommitRecordPublishesNothingAndTheNextRunCleansUp() throws {
        let ws = try Workspace("s3kill")
        let s3 = try S3World()
        try seedFeedback(ws, count: 20)
        try ws.writePipeline("fb", s3.pipeline())
        #expect(try ws.etl("run", "fb", environment: s3.environment).status == 0)
        try seedFeedback(ws, from: 21, count: 30)
        let gate = ws.directory.appendingPathComponent("gate").path
        let (process, _) = try ws.startEtl(["run", "fb"], environment: s3.environment.merging(["ETL_TEST_PAUSE_BEFORE_COMMIT": gate]) { $1 })
        #expect(ws.waitForGate(gate), "the run should reach its commit")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()

        // Everything but the commit record was uploaded; none of it is a version.
        let store = s3.store("fb")
        let debris = try s3.keys("fb")
        #expect(debris.contains("_claims/v2.json") && debris.contains("v2/manifest.json") && debris.contains("_lock.json"))
        #expect(!debris.contains("_commits/v2.json"))
        #expect(try store.versions() == ["v1"])
        let inspect = try ws.etl("inspect", "fb", "--root", s3.root, environment: s3.environment)
        #expect(inspect.status == 0 && !inspect.stdout.contains("v2"), "\(inspect.output)")

        // The next run takes over the dead run's lock, removes its uploads, and publishes the same rows.
        let next = try ws.etl("run", "fb", environment: s3.environment)
        #expect(next.status == 0, "\(next.output)")
        #expect(try store.versions() == ["v1", "v2"])
        let manifest = try store.manifest(of: "v2")
        #expect(manifest.counts.newSamples == 30 && manifest.runId != nil)
        let after = try s3.keys("fb")
        #expect(!after.contains { $0.hasPrefix("_claims/") || $0 == "_lock.json" })
        // Only objects the published v2 lists (or writes) remain under v2/.
        let listed = Set(manifest.splits.flatMap { split, entry in entry.shards.map { "v2/\(split)/\($0.basename)" } + ["v2/\(split)/index.json"] })
            .union(["v2/manifest.json", "v2/README.md", "v2/rows.bin", "v2/quarantine.jsonl"])
        #expect(after.filter { $0.hasPrefix("v2/") }.allSatisfy(listed.contains), "no leftover of the killed run under v2/")
        #expect(try s3.samples("fb", "v2").count == 50)
    }

    @Test func twoRunsRacingForTheSameVersionExactlyOneWins() throws {
        let ws = try Workspace("s3race")
        let s3 = try S3World()
        try seedFeedback(ws, count: 20)
        try ws.writePipeline("fb", s3.pipeline())
        #expect(try ws.etl("run", "fb", environment: s3.environment).status == 0)
        try seedFeedback(ws, from: 21, count: 30)
        // Both skip the lock (which would stop the second at once). The first holds at its commit; the second finds
        // v2 claimed before it uploads anything, and stops with the conflict code.
        let gate = ws.directory.appendingPathComponent("gate").path
        let environment = s3.environment.merging(["ETL_TEST_SKIP_LOCK": "1", "ETL_TEST_PAUSE_BEFORE_COMMIT": gate]) { $1 }
        let (first, firstErr) = try ws.startEtl(["run", "fb"], environment: environment)
        #expect(ws.waitForGate(gate))
        let second = try ws.etl("run", "fb", environment: environment)
        #expect(second.status == 6, "\(second.output)")
        #expect(second.stderr.contains("another run is building fb@v2") && second.stderr.contains("nothing was published"), "\(second.stderr)")
        FileManager.default.createFile(atPath: gate, contents: nil)
        let firstText = String(decoding: firstErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        first.waitUntilExit()
        #expect(first.terminationStatus == 0, "\(firstText)")
        let store = s3.store("fb")
        #expect(try store.versions() == ["v1", "v2"])
        #expect(try store.manifest(of: "v2").counts.newSamples == 30)
        #expect(try s3.samples("fb", "v2").count == 50)
    }

    /// The commit record itself is the compare-and-swap: even two staged versions of one name (the claim taken over,
    /// as after a lease expired under a live run) cannot both be published.
    @Test func theCommitRecordIsWrittenOnceEvenWhenTwoRunsStagedTheSameVersion() throws {
        let s3 = try S3World()
        let store = s3.store("cas")
        let a = try store.stageVersion(runId: "run-a")
        try s3.client.delete(bucket: s3.bucket, key: "team/datasets/cas/_claims/v1.json")
        let b = try store.stageVersion(runId: "run-b")
        try a.write(Array("a".utf8), to: "note.txt")
        try b.write(Array("b".utf8), to: "note.txt")
        try b.commit(as: "v1", expectedLatest: nil)
        let lost = #expect(throws: DatasetError.self) { try a.commit(as: "v1", expectedLatest: nil) }
        #expect(lost?.code == .conflict)
        a.discard()
        #expect(try store.versions() == ["v1"])
        #expect(try store.read("note.txt", of: "v1") == Array("b".utf8), "the loser does not delete what the winner published")
        let claimed = #expect(throws: DatasetError.self) { try store.stageVersion(runId: "run-c").commit(as: "v2", expectedLatest: "v0") }
        #expect(claimed?.code == .conflict)
    }

    @Test func credentialsNeverAppearInOutputManifestsOrTheLedger() throws {
        let ws = try Workspace("s3secret")
        let s3 = try S3World()
        try seedFeedback(ws, count: 12)
        try ws.writePipeline("fb", s3.pipeline())
        var outputs: [String] = []
        let run = try ws.etl("run", "fb", "--log-format", "json", environment: s3.environment)
        #expect(run.status == 0, "\(run.output)")
        outputs.append(run.output)
        // A bucket that does not exist, and a server that refuses connections: failures whose messages quote the
        // server and the network.
        try ws.writePipeline("gone", s3.pipeline().replacingOccurrences(of: s3.root, with: "s3://etl-no-such-bucket-\(UUID().uuidString.prefix(8).lowercased())/x")
            .replacingOccurrences(of: "name: fb", with: "name: gone"))
        let gone = try ws.etl("run", "gone", environment: s3.environment)
        #expect(gone.status != 0 && gone.stderr.contains("etl-no-such-bucket"), "\(gone.output)")
        outputs.append(gone.output)
        let refused = try ws.etl("run", "fb", environment: s3.environment.merging(["AWS_ENDPOINT_URL": "http://127.0.0.1:9"]) { $1 })
        #expect(refused.status == 5, "\(refused.output)")
        outputs.append(refused.output)
        for (index, text) in outputs.enumerated() { S3World.expectNoSecret(text, in: "output of command \(index)") }
        for key in try s3.keys("fb") {
            let bytes = try s3.client.get(bucket: s3.bucket, key: "team/datasets/fb/\(key)")
            S3World.expectNoSecret(String(decoding: bytes, as: UTF8.self), in: key)
        }
    }

    @Test func aLiveRunsLeaseStopsASecondRun() throws {
        let ws = try Workspace("s3lock")
        let s3 = try S3World()
        try seedFeedback(ws, count: 5)
        try ws.writePipeline("fb", s3.pipeline())
        // A lease of a live process (this test's) that has not expired.
        let lease = "{\"acquired_at\":\"2026-01-01T00:00:00Z\",\"expires_at_unix\":\(Date().timeIntervalSince1970 + 600),\"host\":\"\(ProcessInfo.processInfo.hostName)\",\"pid\":\(getpid()),\"run_id\":\"other-run\"}"
        try s3.client.put(Array(lease.utf8), bucket: s3.bucket, key: "team/datasets/fb/_lock.json")
        let run = try ws.etl("run", "fb", environment: s3.environment)
        #expect(run.status == 6, "\(run.output)")
        #expect(run.stderr.contains("another run holds this dataset's lock") && run.stderr.contains("other-run"), "\(run.stderr)")
        #expect(try s3.store("fb").versions().isEmpty)
        // Expired: taken over.
        let stale = "{\"acquired_at\":\"2026-01-01T00:00:00Z\",\"expires_at_unix\":1000,\"host\":\"elsewhere\",\"pid\":1,\"run_id\":\"old-run\"}"
        try s3.client.put(Array(stale.utf8), bucket: s3.bucket, key: "team/datasets/fb/_lock.json")
        let takeover = try ws.etl("run", "fb", environment: s3.environment)
        #expect(takeover.status == 0, "\(takeover.output)")
        #expect(try s3.store("fb").versions() == ["v1"])
    }
}
