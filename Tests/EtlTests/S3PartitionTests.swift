import Dataset
import Foundation
import MDS
import ObjectStorage
import Testing

/// Partitioned runs on S3 (a real moto server on loopback), as pods on different machines run them: `etl plan`,
/// N partitions as concurrent processes sharing nothing but the bucket, `etl commit`. The version holds the samples a
/// single run of the same rows publishes.
@Suite struct S3PartitionTests {
    /// Every sample of an S3 version with its split (hashes checked), downloaded split by split.
    static func samplesWithSplits(_ s3: S3World, _ dataset: String, _ version: String) throws -> [String: (split: String, values: [String: MDSValue])] {
        let local = FileManager.default.temporaryDirectory.appendingPathComponent("s3-part-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: local) }
        var all: [String: (split: String, values: [String: MDSValue])] = [:]
        for split in try s3.store(dataset).manifest(of: version).splits.keys {
            let directory = local.appendingPathComponent(split)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let prefix = "team/datasets/\(dataset)/\(version)/\(split)/"
            for object in try s3.client.list(bucket: s3.bucket, prefix: prefix).objects {
                try s3.client.download(bucket: s3.bucket, key: object.key, to: directory.appendingPathComponent(String(object.key.dropFirst(prefix.count))).path)
            }
            try MDSReader(directory: directory).forEachSample(verifyHashes: true) { sample in
                guard case .string(let key)? = sample["__key__"] else { throw TestFailure("sample without __key__") }
                #expect(all[key] == nil, "key \(key) twice in \(dataset)@\(version)")
                all[key] = (split, sample)
            }
        }
        return all
    }

    /// Partitions `indices` of `count` at once, each its own process; each must succeed.
    static func runPartitions(_ ws: Workspace, _ s3: S3World, runId: String, count: Int, only indices: [Int]) throws {
        let started = try indices.map { index in
            (index, try ws.startEtl(["run", "fb", "--run", runId, "--partition", "\(index)/\(count)"], environment: s3.environment))
        }
        for (index, (process, err)) in started {
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "partition \(index)/\(count): \(stderr.suffix(2000))")
            S3World.expectNoSecret(stderr, in: "partition \(index)'s messages")
        }
    }

    @Test func threeConcurrentPartitionsPublishTheSamplesOfASingleRun() throws {
        let ws = try Workspace("s3part")
        let s3 = try S3World()
        try seedFeedback(ws, count: 240)
        try ws.writePipeline("fb", s3.pipeline(PartitionTests.pipeline))
        try ws.writePipeline("single", PartitionTests.pipeline.replacingOccurrences(of: "name: fb", with: "name: single"))
        #expect(try ws.etl("run", "single").status == 0)

        let planned = try ws.etl("plan", "fb", "--partitions", "3", "--run-id", "first", environment: s3.environment)
        #expect(planned.status == 0, "\(planned.output)")
        #expect(try s3.keys("fb").contains("_runs/first/plan.json"))
        try Self.runPartitions(ws, s3, runId: "first", count: 3, only: [0, 1, 2])
        let keys = try s3.keys("fb")
        for index in 0..<3 {
            #expect(keys.contains("_runs/first/partition-\(index).json"), "partition \(index) completed in the bucket")
            #expect(!keys.contains("_runs/first/partition-\(index).lock.json"), "partition \(index)'s lease is released")
        }
        #expect(try s3.store("fb").versions().isEmpty, "no version before the commit")

        let committed = try ws.etl("commit", "fb", "--run", "first", environment: s3.environment)
        #expect(committed.status == 0, "\(committed.output)")
        #expect(committed.stdout.contains("published fb/v1"), "\(committed.stdout)")
        S3World.expectNoSecret(committed.output, in: "the commit's output")
        let store = s3.store("fb")
        #expect(try store.versions() == ["v1"])
        let v1 = try store.manifest(of: "v1"), single = try ws.manifest("single", "v1")
        #expect(v1.runId == "first" && v1.cursor == single.cursor && v1.counts == single.counts, "\(v1.cursor) \(v1.counts)")

        let got = try Self.samplesWithSplits(s3, "fb", "v1")
        let want = try ws.allSamples("single", "v1")
        #expect(got.count == want.count, "\(got.count) samples, the single run has \(want.count)")
        let differing = want.keys.filter { key in
            guard let sample = got[key] else { return true }
            return sample.split != want[key]!.split || sample.values.filter { $0.key != "__key__" } != want[key]!.values.filter { $0.key != "__key__" }
        }
        #expect(differing.isEmpty, "\(differing.count) samples differ, e.g. \(differing.sorted().prefix(3))")

        // The partitions' objects went with the commit; plan and records stay, so a retried commit publishes nothing.
        let after = try s3.keys("fb")
        #expect(!after.contains { $0.hasPrefix("_runs/first/partition-") && $0.split(separator: "/").count > 3 },
                "attempt objects are left: \(after.filter { $0.hasPrefix("_runs/first/") }.prefix(5))")
        #expect(after.contains("_runs/first/plan.json"))
        let again = try ws.etl("commit", "fb", "--run", "first", environment: s3.environment)
        #expect(again.status == 0 && again.stdout.contains("already published as v1"), "\(again.output)")
        func tool(_ arguments: String...) throws -> ProcessResult {
            try runProcess(etlBinary, arguments + ["--root", s3.root], cwd: ws.directory, environment: s3.environment)
        }
        let verified = try tool("verify", "fb", "--all")
        #expect(verified.status == 0, "\(verified.output.suffix(2000))")
        // The tools see one dataset with one version: the run area is neither a dataset, a version nor debris.
        let datasets = try tool("datasets")
        #expect(datasets.status == 0 && datasets.stdout.contains("fb") && !datasets.stdout.contains("_runs"), "\(datasets.output)")
        let gc = try tool("gc", "fb", "--keep", "1")
        #expect(gc.status == 0, "\(gc.output)")
        #expect(try s3.keys("fb").filter { $0.hasPrefix("_runs/first/") } == after.filter { $0.hasPrefix("_runs/first/") }, "gc left the run area alone")
        #expect(try store.versions() == ["v1"])
        // A single run after it finds nothing new: every row of the range is in v1's rows.bin.
        let next = try ws.etl("run", "fb", environment: s3.environment)
        #expect(next.status == 0 && next.stdout.contains("nothing new"), "\(next.output)")
        #expect(try store.versions() == ["v1"], "neither the run nor gc-like cleanup took _runs/ for a version")
    }

    @Test func aPartitionKilledMidwayIsRerunAtOnceOnTheSameHostAndPublishedExactlyOnce() throws {
        let ws = try Workspace("s3partkill")
        let s3 = try S3World()
        try seedFeedback(ws, count: 300)
        try ws.writePipeline("fb", s3.pipeline(PartitionTests.pipeline))
        let planned = try ws.etl("plan", "fb", "--partitions", "3", "--run-id", "r", environment: s3.environment)
        #expect(planned.status == 0, "\(planned.output)")
        try Self.runPartitions(ws, s3, runId: "r", count: 3, only: [0, 2])

        // Partition 1 stops right after its first checkpoint (shards sealed and being uploaded) and is killed there,
        // leaving its lease behind.
        let gate = ws.directory.appendingPathComponent("gate").path
        var environment = s3.environment
        environment["ETL_TEST_PAUSE_AFTER_CHECKPOINT"] = gate
        let (process, _) = try ws.startEtl(["run", "fb", "--run", "r", "--partition", "1/3"], environment: environment)
        #expect(ws.waitForGate(gate), "partition 1 reached a checkpoint")
        #expect(try s3.keys("fb").contains("_runs/r/partition-1.lock.json"), "partition 1 holds its lease")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        func attempts() throws -> Set<String> {
            Set(try s3.keys("fb").filter { $0.hasPrefix("_runs/r/partition-1/") }.map { String($0.split(separator: "/")[3]) })
        }
        let killed = try attempts()

        let refused = try ws.etl("commit", "fb", "--run", "r", environment: s3.environment)
        #expect(refused.status == 6, "\(refused.output)")
        #expect(refused.stderr.contains("partition 1 of 3 has not finished"), "\(refused.stderr)")
        #expect(try s3.store("fb").versions().isEmpty)

        // The killed process's lease is stale at once on its own host: the rerun takes it and replaces the attempt.
        try Self.runPartitions(ws, s3, runId: "r", count: 3, only: [1])
        let rerun = try attempts()
        #expect(rerun.count == 1 && rerun.isDisjoint(with: killed), "attempts of partition 1: \(rerun), killed: \(killed)")
        let committed = try ws.etl("commit", "fb", "--run", "r", environment: s3.environment)
        #expect(committed.status == 0, "\(committed.output)")
        let samples = try Self.samplesWithSplits(s3, "fb", "v1")
        #expect(samples.count == 300, "\(samples.count) samples")
    }

    @Test func aCommitRefusesAMissingPartition() throws {
        let ws = try Workspace("s3partmiss")
        let s3 = try S3World()
        try seedFeedback(ws, count: 120)
        try ws.writePipeline("fb", s3.pipeline(PartitionTests.pipeline))
        let planned = try ws.etl("plan", "fb", "--partitions", "3", "--run-id", "r", environment: s3.environment)
        #expect(planned.status == 0, "\(planned.output)")
        try Self.runPartitions(ws, s3, runId: "r", count: 3, only: [0, 1])
        let missing = try ws.etl("commit", "fb", "--run", "r", environment: s3.environment)
        #expect(missing.status == 6, "\(missing.output)")
        #expect(missing.stderr.contains("partition 2 of 3 has not finished"), "\(missing.stderr)")
        #expect(try s3.store("fb").versions().isEmpty)
        #expect(try !s3.keys("fb").contains { $0.hasPrefix("_claims/") || $0.hasPrefix("v1/") }, "the refused commit left no claim or upload")

        // The missing partition runs (a retried pod), and the commit publishes all 120 rows once.
        try Self.runPartitions(ws, s3, runId: "r", count: 3, only: [2])
        let committed = try ws.etl("commit", "fb", "--run", "r", environment: s3.environment)
        #expect(committed.status == 0, "\(committed.output)")
        #expect(try Self.samplesWithSplits(s3, "fb", "v1").count == 120)
    }
}
