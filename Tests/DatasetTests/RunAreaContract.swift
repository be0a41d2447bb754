import Dataset
import Foundation
import MDS
import SystemIO
import Testing

/// What every `RunArea` must do for partitioned runs (`etl plan`, `etl run --partition`, `etl commit`), written once
/// against the protocol like `DatasetStoreContract`: `LocalRunAreaContractTests` runs it on a directory,
/// `S3RunAreaContractTests` on a bucket of the S3 server scripts/test starts. Every check gets a fresh, empty store.
enum RunAreaContract {
    typealias Factory = (_ dataset: String) throws -> any RunArea

    static let checks: [(name: String, check: @Sendable (any RunArea) throws -> Void)] = [
        ("a plan is stored once, a second plan of the run id is a conflict", planIsWrittenOnce),
        ("a partition's lock excludes a second holder until dropped", partitionLockIsExclusive),
        ("a staged and completed partition's record reads back", completionReadsBack),
        ("a rerun's completion replaces the previous attempt and its files", rerunReplacesTheAttempt),
        ("completed partitions' shards are shared into a version, sizes checked", shareIntoAStagedVersion),
        ("a partition's file is readable locally", localFileHoldsTheBytes),
        ("removing the output keeps plan and records, and no version sees the run area", removalKeepsTheRecords),
    ]

    static func run(_ name: String, _ makeStore: Factory) throws {
        let check = try #require(checks.first { $0.name == name }, "no run-area contract check named \(name)")
        try check.check(try makeStore("fb"))
    }

    // MARK: A run, as etl plan and etl run --partition make it

    static func plan(_ runId: String, partitions: Int = 2, readThrough: String? = "10") -> RunPlan {
        RunPlan(runId: runId, dataset: "fb", pipeline: .init(name: "fb", path: "pipelines/fb.yaml", configSha256: "c0ffee"),
                parent: nil, latest: nil, partitions: partitions, cursor: .init(column: "id", type: "int8", from: nil, to: readThrough),
                columns: [.init(name: SampleKey.column, encoding: "str", source: "id", transform: "key"),
                          .init(name: "label", encoding: "str", source: "label", transform: "value")],
                readAfter: nil, readThrough: readThrough, publishedIn: [],
                source: .init(snapshot: "100:100:", xmin: 100, xmax: 100, takenAt: 1_764_000_000, oldestTransactionStart: nil, standby: false),
                createdAt: "2026-11-25T00:00:00Z")
    }

    /// The bytes a partition's rows.bin holds in these checks (a stand-in: the store never reads inside it).
    static func rowsBytes(_ partition: Int, _ attempt: String) -> [UInt8] { Array("rows of \(partition) in \(attempt)\n".utf8) }

    /// One attempt of partition `index`, as `etl run --partition` does it under the partition's lock: stages a real
    /// shard holding `keys` and a rows.bin, then completes. Returns the completion record.
    @discardableResult
    static func runPartition(_ store: any RunArea, _ index: Int, of plan: RunPlan, attempt: String, keys: [String]) throws -> PartitionCompletion {
        let lock = try store.lockPartition(index, runId: plan.runId)
        defer { withExtendedLifetime(lock) {} }
        let staged = try store.stagePartition(index, runId: plan.runId, attempt: attempt)
        let entry = try DatasetStoreContract.writeShard(keys: keys, into: staged.workDirectory + "/train")
        try staged.stage("train/\(entry.storedFile.basename)")
        var rows = try SystemFile.createExclusive(staged.workDirectory + "/rows.bin", role: "rows.bin")
        try rows.write(rowsBytes(index, attempt))
        try rows.close()
        try staged.stage("rows.bin")
        let record = PartitionCompletion(
            runId: plan.runId, partition: index, partitions: plan.partitions, configSha256: plan.pipeline.configSha256, attempt: attempt,
            sealed: ["train": [entry]], rowsRead: keys.count, samplesWritten: keys.count, quarantined: 0, alreadyPublished: 0,
            sourceBytes: 10 * keys.count, quarantine: .init(count: 0, byReason: [:], file: nil), rowsFile: "rows.bin",
            finishedAt: "2026-11-25T00:00:0\(index)Z")
        try store.completePartition(record)
        return record
    }

    static func shardPath(_ record: PartitionCompletion) throws -> (path: String, bytes: Int) {
        let entry = try #require(record.sealed["train"]?.first)
        return ("train/\(entry.storedFile.basename)", entry.storedFile.bytes)
    }

    static func expectError(_ code: DatasetError.Code, _ what: String, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("\(what): expected \(code), it succeeded")
        } catch let error as DatasetError {
            #expect(error.code == code, "\(what): \(error)")
        } catch {
            Issue.record("\(what): expected \(code), got \(error)")
        }
    }

    // MARK: Checks

    static func planIsWrittenOnce(_ store: any RunArea) throws {
        let first = plan("run-a")
        try store.createRun(first)
        #expect(try store.plan(ofRun: "run-a") == first)
        var second = plan("run-a", partitions: 5)
        second.createdAt = "2026-11-25T01:00:00Z"
        expectError(.conflict, "a second plan of run-a") { try store.createRun(second) }
        #expect(try store.plan(ofRun: "run-a") == first, "the first plan is kept")
        expectError(.notFound, "the plan of a run never planned") { _ = try store.plan(ofRun: "run-b") }
        #expect(try store.versions().isEmpty, "a plan is not a version")
    }

    static func partitionLockIsExclusive(_ store: any RunArea) throws {
        try store.createRun(plan("run-a"))
        var held: DatasetLock? = try store.lockPartition(0, runId: "run-a")
        expectError(.locked, "partition 0 while held") { _ = try store.lockPartition(0, runId: "run-a") }
        let other = try store.lockPartition(1, runId: "run-a")
        withExtendedLifetime(held) {}
        held = nil
        let again = try store.lockPartition(0, runId: "run-a")
        withExtendedLifetime((other, again)) {}
    }

    static func completionReadsBack(_ store: any RunArea) throws {
        let plan = plan("run-a")
        try store.createRun(plan)
        #expect(try store.completion(ofPartition: 0, runId: "run-a") == nil)
        let record = try runPartition(store, 0, of: plan, attempt: "attempt-1", keys: ["1", "3"])
        #expect(try store.completion(ofPartition: 0, runId: "run-a") == record)
        #expect(try store.completion(ofPartition: 1, runId: "run-a") == nil, "partition 1 has not completed")
    }

    static func rerunReplacesTheAttempt(_ store: any RunArea) throws {
        let plan = plan("run-a")
        try store.createRun(plan)
        let first = try runPartition(store, 0, of: plan, attempt: "attempt-1", keys: ["1", "3"])
        // A rerun killed before completing: its files never count, and the next attempt's staging removes them.
        do {
            let lock = try store.lockPartition(0, runId: "run-a")
            let killed = try store.stagePartition(0, runId: "run-a", attempt: "attempt-2")
            let entry = try DatasetStoreContract.writeShard(keys: ["1"], into: killed.workDirectory + "/train")
            try killed.stage("train/\(entry.storedFile.basename)")
            withExtendedLifetime(lock) {}
        }
        #expect(try store.completion(ofPartition: 0, runId: "run-a") == first, "a killed rerun leaves the record alone")
        let second = try runPartition(store, 0, of: plan, attempt: "attempt-3", keys: ["1", "3", "5"])
        #expect(try store.completion(ofPartition: 0, runId: "run-a") == second)
        let staged = try store.stageVersion(runId: "commit-run-a")
        defer { staged.discard() }
        let old = try shardPath(first)
        expectError(.corrupt, "the replaced attempt's shard") {
            try store.sharePartitionFile(old.path, of: first, into: staged, expectedBytes: old.bytes)
        }
        // The superseded attempt's rows.bin is gone too: no local copy of it can be had.
        if let local = try? store.localPartitionFile("rows.bin", of: first) {
            #expect(!FileSystem.exists(local), "the replaced attempt's rows.bin is still at \(local)")
        }
        let new = try shardPath(second)
        try store.sharePartitionFile(new.path, of: second, into: staged, expectedBytes: new.bytes)
    }

    static func shareIntoAStagedVersion(_ store: any RunArea) throws {
        let plan = plan("run-a")
        try store.createRun(plan)
        let records = [try runPartition(store, 0, of: plan, attempt: "attempt-1", keys: ["2", "4"]),
                       try runPartition(store, 1, of: plan, attempt: "attempt-1", keys: ["1", "3", "5"])]
        let staged = try store.stageVersion(runId: "commit-run-a")
        let first = try shardPath(records[0])
        expectError(.corrupt, "a shard whose size is not the record's") {
            try store.sharePartitionFile(first.path, of: records[0], into: staged, expectedBytes: first.bytes + 1)
        }
        for record in records {
            let shard = try shardPath(record)
            try store.sharePartitionFile(shard.path, of: record, into: staged, expectedBytes: shard.bytes)
        }
        let built = try VersionBuilder(parent: nil, splitNames: ["train"])
            .build(run: DatasetStoreContract.record("fb", "v1"), sealed: ["train": records.flatMap { $0.sealed["train"] ?? [] }])
        try store.assemble(built, into: staged)
        try staged.commit(as: "v1", expectedLatest: nil)
        #expect(try store.versions() == ["v1"])
        let files = try store.files(of: "v1")
        for record in records {
            let shard = try shardPath(record)
            #expect(files.contains { $0.path == shard.path && $0.bytes == shard.bytes }, "v1 holds \(shard.path) whole")
        }
        // The version's shard holds the partition's bytes.
        let partitionBytes = try FileSystem.readAll(try store.localPartitionFile(first.path, of: records[0]), role: "shard")
        #expect(try store.read(first.path, of: "v1") == partitionBytes, "v1's \(first.path) differs from the partition's")
    }

    static func localFileHoldsTheBytes(_ store: any RunArea) throws {
        let plan = plan("run-a")
        try store.createRun(plan)
        let record = try runPartition(store, 1, of: plan, attempt: "attempt-7", keys: ["1"])
        let local = try store.localPartitionFile("rows.bin", of: record)
        #expect(try FileSystem.readAll(local, role: "rows.bin") == rowsBytes(1, "attempt-7"))
    }

    static func removalKeepsTheRecords(_ store: any RunArea) throws {
        let plan = plan("run-a")
        try store.createRun(plan)
        let record = try runPartition(store, 0, of: plan, attempt: "attempt-1", keys: ["1"])
        try DatasetStoreContract.publish(store, keys: ["9"])
        #expect(try store.versions() == ["v1"], "the run area is no version")
        let cleaned = store.removeAbandonedStaging()
        #expect(!cleaned.contains { $0.contains("_runs") }, "the staging cleanup took the run area for debris: \(cleaned)")
        #expect(try store.completion(ofPartition: 0, runId: "run-a") == record, "the cleanup left the completed partition alone")
        // The run ledger lives next to run areas on S3 (_runs/<time>-<id>.json): it reads its records, nothing of a run area.
        try store.runLedger.append(RunRecord(
            runId: "run-a", pipeline: "fb", dataset: "fb", configSha256: "c0ffee", host: "test", pid: 1, startedAt: "2026-11-25T00:00:00Z",
            endedAt: "2026-11-25T00:00:01Z", durationSeconds: 1, outcome: .published, exitCode: 0, versionPublished: "v1"))
        #expect(try store.runLedger.records().map(\.runId) == ["run-a"])
        #expect(try store.plan(ofRun: "run-a") == plan, "the ledger left the plan alone")
        store.removePartitionOutput(runId: "run-a")
        #expect(try store.plan(ofRun: "run-a") == plan)
        #expect(try store.completion(ofPartition: 0, runId: "run-a") == record)
        let staged = try store.stageVersion(runId: "late")
        defer { staged.discard() }
        let shard = try shardPath(record)
        expectError(.corrupt, "a shard of removed output") {
            try store.sharePartitionFile(shard.path, of: record, into: staged, expectedBytes: shard.bytes)
        }
        #expect(try store.versions() == ["v1"])
    }
}

/// The run-area contract on the local file system, one test case per check.
@Suite struct LocalRunAreaContractTests {
    @Test(arguments: RunAreaContract.checks.map(\.name))
    func contract(_ name: String) throws {
        let root = LocalDatasetStoreTests.Root()
        try RunAreaContract.run(name) { LocalDatasetStore(outputRoot: root.path, dataset: $0) }
    }
}
