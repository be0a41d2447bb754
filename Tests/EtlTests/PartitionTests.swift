import Foundation
import MDS
import Postgres
import Testing

/// Partitioned runs with the real binary: `etl plan`, N partitions as concurrent processes, `etl commit`. The version
/// holds the same samples as a single run of the same range (same keys, splits and values; shards may differ).
@Suite struct PartitionTests {
    static let pipeline = basicPipeline.replacingOccurrences(of: "  size_limit: 4KiB", with: "  size_limit: 4KiB\n  checkpoint_every: 6KiB")

    static func start(_ ws: Workspace, _ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: etlBinary)
        process.arguments = arguments
        process.currentDirectoryURL = ws.directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let err = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = err
        try process.run()
        return (process, err)
    }

    /// Every partition of `runId` at once, each its own process; each must succeed.
    static func runPartitions(_ ws: Workspace, runId: String, count: Int, only: [Int]? = nil) throws {
        let started = try (only ?? Array(0..<count)).map { index in
            (index, try start(ws, ["run", "fb", "--run", runId, "--partition", "\(index)/\(count)"]))
        }
        for (index, (process, err)) in started {
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "partition \(index)/\(count): \(stderr.suffix(2000))")
        }
    }

    static func plan(_ ws: Workspace, runId: String, count: Int) throws {
        let planned = try ws.etl("plan", "fb", "--partitions", "\(count)", "--run-id", runId)
        #expect(planned.status == 0, "\(planned.output)")
        #expect(planned.stdout.split(separator: "\n").last.map(String.init) == runId, "\(planned.stdout)")
    }

    /// The samples of two versions are the same: keys, the split of each, every value.
    static func expectSameSamples(_ ws: Workspace, _ dataset: String, _ version: String, as reference: String, _ referenceVersion: String) throws {
        let got = try ws.allSamples(dataset, version)
        let want = try ws.allSamples(reference, referenceVersion)
        #expect(got.count == want.count, "\(got.count) samples, the single run has \(want.count)")
        #expect(Set(got.keys) == Set(want.keys), "the same keys")
        let differing = want.keys.filter { key in got[key].map { $0.split != want[key]!.split || $0.values != want[key]!.values } ?? true }
        #expect(differing.isEmpty, "\(differing.count) samples differ, e.g. \(differing.sorted().prefix(3))")
    }

    /// Every __key__ in every shard of a version, duplicates kept.
    static func keysWithRepeats(_ ws: Workspace, _ version: String) throws -> [String] {
        var keys: [String] = []
        for split in try ws.manifest("fb", version).splits.keys {
            try MDSReader(directory: ws.versionDirectory("fb", version).appendingPathComponent(split)).forEachSample { sample in
                if case .string(let key)? = sample["__key__"] { keys.append(key) }
            }
        }
        return keys
    }

    @Test(arguments: [1, 3, 8])
    func concurrentPartitionsPublishTheSamplesOfASingleRun(partitions: Int) throws {
        let ws = try Workspace("part\(partitions)")
        try seedFeedback(ws, count: 240)
        try ws.writePipeline("fb", Self.pipeline)
        try ws.writePipeline("single", Self.pipeline.replacingOccurrences(of: "name: fb", with: "name: single"))
        #expect(try ws.etl("run", "single").status == 0)

        try Self.plan(ws, runId: "first", count: partitions)
        try Self.runPartitions(ws, runId: "first", count: partitions)
        let committed = try ws.etl("commit", "fb", "--run", "first")
        #expect(committed.status == 0, "\(committed.output)")
        #expect(committed.stdout.contains("published fb/v1"), "\(committed.stdout)")
        try Self.expectSameSamples(ws, "fb", "v1", as: "single", "v1")
        let v1 = try ws.manifest("fb", "v1"), single = try ws.manifest("single", "v1")
        #expect(v1.runId == "first" && v1.cursor == single.cursor && v1.counts == single.counts, "\(v1.cursor) \(v1.counts)")
        #expect(v1.source != nil && v1.rowsFile == "rows.bin")
        // Each row was read by exactly one partition, and with several partitions each read only its share.
        let rowsRead = try (0..<partitions).map { index -> Int in
            let record = ws.datasets.appendingPathComponent("fb/_runs/first/partition-\(index).json")
            let object = try JSONSerialization.jsonObject(with: try Data(contentsOf: record)) as? [String: Any]
            return try #require(object?["rows_read"] as? Int)
        }
        #expect(rowsRead.reduce(0, +) == 240 && (partitions == 1 || rowsRead.allSatisfy { $0 < 240 }), "\(rowsRead)")

        // The next increment builds on it, partitioned again, and still matches the single run's.
        try seedFeedback(ws, from: 241, count: 90)
        #expect(try ws.etl("run", "single").status == 0)
        try Self.plan(ws, runId: "second", count: partitions)
        try Self.runPartitions(ws, runId: "second", count: partitions)
        let next = try ws.etl("commit", "fb", "--run", "second")
        #expect(next.status == 0, "\(next.output)")
        try Self.expectSameSamples(ws, "fb", "v2", as: "single", "v2")
        #expect(try ws.manifest("fb", "v2").parent == "v1")
        #expect(try ws.etl("verify", "fb@v2").status == 0)
        #expect(ws.datasetEntries("fb").filter { $0.hasPrefix(".staging") }.isEmpty)

        // Nothing new: a plan, empty partitions, and a commit that publishes nothing.
        try Self.plan(ws, runId: "idle", count: partitions)
        try Self.runPartitions(ws, runId: "idle", count: partitions)
        let idle = try ws.etl("commit", "fb", "--run", "idle")
        #expect(idle.status == 0 && idle.stdout.contains("nothing new"), "\(idle.output)")
        #expect(ws.versions("fb") == ["v1", "v2"])
    }

    @Test func aPartitionKilledMidwayAndRerunIsPublishedExactlyOnce() throws {
        let ws = try Workspace("partkill")
        try seedFeedback(ws, count: 300)
        try ws.writePipeline("fb", Self.pipeline)
        try ws.writePipeline("single", Self.pipeline.replacingOccurrences(of: "name: fb", with: "name: single"))
        #expect(try ws.etl("run", "single").status == 0)
        try Self.plan(ws, runId: "r", count: 3)
        try Self.runPartitions(ws, runId: "r", count: 3, only: [0, 2])

        // Partition 1 stops right after its first checkpoint (shards already sealed) and is killed there.
        let gate = ws.directory.appendingPathComponent("gate").path
        let (process, _) = try Self.start(ws, ["run", "fb", "--run", "r"], environment: ["ETL_TEST_PAUSE_AFTER_CHECKPOINT": gate, "JOB_COMPLETION_INDEX": "1"])
        let deadline = Date().addingTimeInterval(60)
        func paused() -> Bool {
            ((try? FileManager.default.contentsOfDirectory(atPath: ws.directory.path)) ?? []).contains { $0.hasPrefix("gate.ready.") }
        }
        while !paused() && Date() < deadline { usleep(20_000) }
        #expect(paused(), "partition 1 reached a checkpoint")
        let area = ws.datasets.appendingPathComponent("fb/_runs/r/partition-1")
        let killedAttempt = try #require(try FileManager.default.contentsOfDirectory(atPath: area.path).first)
        let sealedBeforeKill = try FileManager.default.contentsOfDirectory(atPath: area.appendingPathComponent(killedAttempt).path)
        #expect(!sealedBeforeKill.isEmpty)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()

        let refused = try ws.etl("commit", "fb", "--run", "r")
        #expect(refused.status == 6, "\(refused.output)")
        #expect(refused.stderr.contains("partition 1 of 3 has not finished") && refused.stderr.contains("--partition 1/3"), "\(refused.stderr)")
        #expect(ws.versions("fb").isEmpty)

        // The rerun replaces the killed attempt; rerunning a finished partition (a retried pod) replaces its output too.
        try Self.runPartitions(ws, runId: "r", count: 3, only: [1])
        try Self.runPartitions(ws, runId: "r", count: 3, only: [2])
        let attempts = try FileManager.default.contentsOfDirectory(atPath: area.path)
        #expect(attempts.count == 1 && attempts != [killedAttempt], "\(attempts)")
        let committed = try ws.etl("commit", "fb", "--run", "r")
        #expect(committed.status == 0, "\(committed.output)")

        let keys = try Self.keysWithRepeats(ws, "v1")
        #expect(keys.count == 300 && Set(keys).count == 300, "\(keys.count) samples, \(Set(keys).count) keys")
        try Self.expectSameSamples(ws, "fb", "v1", as: "single", "v1")
        #expect(try ws.etl("verify", "fb@v1").status == 0)
        // The partitions' files went with the commit; a second commit (a retried Job) publishes nothing more.
        #expect(!FileManager.default.fileExists(atPath: area.path))
        let again = try ws.etl("commit", "fb", "--run", "r")
        #expect(again.status == 0 && again.stdout.contains("already published as v1"), "\(again.output)")
        let late = try ws.etl("run", "fb", "--run", "r", "--partition", "1/3")
        #expect(late.status == 0 && late.stdout.contains("already published as v1"), "\(late.output)")
        #expect(ws.versions("fb") == ["v1"])
        // The next run finds nothing to re-publish: every row of the range is in v1's rows.bin.
        let next = try ws.etl("run", "fb")
        #expect(next.status == 0 && next.stdout.contains("nothing new"), "\(next.output)")
    }

    @Test func aCommitRefusesAMissingPartitionAStaleParentOrAChangedFile() throws {
        let ws = try Workspace("partrefuse")
        try seedFeedback(ws, count: 120)
        try ws.writePipeline("fb", Self.pipeline)
        try Self.plan(ws, runId: "r", count: 3)
        try Self.runPartitions(ws, runId: "r", count: 3, only: [0, 1])
        let missing = try ws.etl("commit", "fb", "--run", "r")
        #expect(missing.status == 6, "\(missing.output)")
        #expect(missing.stderr.contains("partition 2 of 3 has not finished"), "\(missing.stderr)")
        #expect(ws.versions("fb").isEmpty && ws.datasetEntries("fb").filter { $0.hasPrefix(".staging") }.isEmpty)

        // A partition count the plan does not have, a run that was never planned.
        let wrongCount = try ws.etl("run", "fb", "--run", "r", "--partition", "2/4")
        #expect(wrongCount.status == 2 && wrongCount.stderr.contains("planned with 3"), "\(wrongCount.output)")
        let unplanned = try ws.etl("commit", "fb", "--run", "nope")
        #expect(unplanned.status == 7 && unplanned.stderr.contains("no planned run 'nope'"), "\(unplanned.output)")

        // The pipeline file changed since the plan: partitions built with another split seed must not be mixed.
        try ws.writePipeline("fb", Self.pipeline.replacingOccurrences(of: "seed: s1", with: "seed: s2"))
        let changed = try ws.etl("run", "fb", "--run", "r", "--partition", "2/3")
        #expect(changed.status == 2 && changed.stderr.contains("changed since run r was planned"), "\(changed.output)")
        try ws.writePipeline("fb", Self.pipeline)

        // A version published after the plan (a single run here) makes the plan stale.
        try Self.runPartitions(ws, runId: "r", count: 3, only: [2])
        #expect(try ws.etl("run", "fb").status == 0)
        let stale = try ws.etl("commit", "fb", "--run", "r")
        #expect(stale.status == 6 && stale.stderr.contains("planned on no version but the newest version is now v1"), "\(stale.output)")
        #expect(ws.versions("fb") == ["v1"])

        // A --full plan rebuilds everything as a version without parent, made against the newest version.
        let full = try ws.etl("plan", "fb", "--partitions", "2", "--run-id", "full", "--full")
        #expect(full.status == 0, "\(full.output)")
        try PartitionTests.runPartitions(ws, runId: "full", count: 2)
        let rebuilt = try ws.etl("commit", "fb", "--run", "full")
        #expect(rebuilt.status == 0, "\(rebuilt.output)")
        let v2 = try ws.manifest("fb", "v2")
        #expect(v2.parent == nil && v2.counts.samples == 120 && v2.counts.newSamples == 120, "\(v2.counts)")
    }

    /// Pipelines that look rows up in keys.idx (replace by key, dedupe by value) are refused by `etl plan` as a config
    /// error naming the key and why, before any plan is written; the same file runs fine as a single `etl run`.
    @Test func planRefusesChangeColumnAndDedupePipelines() throws {
        let ws = try Workspace("partkeyed")
        try seedFeedback(ws, count: 30)
        let replacing = Self.pipeline.replacingOccurrences(of: "  cursor_column: id\n", with: "  change_column: created_at\n")
        let deduping = Self.pipeline + "\ndedupe: {column: label}\n"
        for (text, key) in [(replacing, "source.change_column 'created_at'"), (deduping, "dedupe.column 'label'")] {
            try ws.writePipeline("fb", text)
            let planned = try ws.etl("plan", "fb", "--partitions", "2", "--run-id", "k")
            #expect(planned.status == 2, "\(planned.output)")
            #expect(planned.stderr.contains("fb.yaml:") && planned.stderr.contains("\(key): partitioned runs (etl plan) do not support"),
                    "\(planned.stderr)")
            #expect(planned.stderr.contains("Use a single `etl run`"), "\(planned.stderr)")
            let partition = try ws.etl("run", "fb", "--run", "k", "--partition", "0/2")
            #expect(partition.status == 2 && partition.stderr.contains("\(key): partitioned runs"), "\(partition.output)")
            #expect(ws.versions("fb").isEmpty)
        }
        #expect(try ws.etl("run", "fb").status == 0)
        #expect(ws.versions("fb") == ["v1"])
    }
}

/// Exactly once across a partitioned run while writers keep writing: a row whose id was taken before the plan but
/// whose transaction commits later is published once — by a partition, if it commits before the partitions read, or
/// by the next run, whose re-read window the plan's snapshot covers.
@Suite struct PartitionExactlyOnceTests {
    /// Partitions look at their share of the re-read window keys only, as a single run does: the 100 rows of 4 KB that
    /// v2 holds are not fetched again, only the late row is (the commit's ledger line sums what the partitions fetched).
    @Test func partitionsFetchThePayloadOfUnpublishedWindowRowsOnly() throws {
        let ws = try Workspace("partwindow")
        try ExactlyOnceTests.setUp(ws, cursor: "id")
        try ws.sql("INSERT INTO $S.events (note) VALUES ('first')")
        #expect(try ws.etl("run", "fb").status == 0)
        let late = try PostgresConnection(conninfo: "")
        try late.execute("BEGIN")
        try late.execute("INSERT INTO \(ws.schema).events (note) VALUES (repeat('A', 4000))")
        usleep(20_000)
        try ws.sql("INSERT INTO $S.events (note) SELECT repeat('b', 4000) FROM generate_series(1, 100)")
        #expect(try ws.etl("run", "fb").status == 0)
        try late.execute("COMMIT")

        try PartitionTests.plan(ws, runId: "w", count: 3)
        try PartitionTests.runPartitions(ws, runId: "w", count: 3)
        let committed = try ws.etl("commit", "fb", "--run", "w")
        #expect(committed.status == 0, "\(committed.output)")
        let v3 = try ws.manifest("fb", "v3")
        #expect(v3.counts.newSamples == 1, "the late row, found below v2's cursor")
        let record = try #require(try OpsKillTests.lastLedgerRecord(ws))
        let fetched = try #require(record["rows_fetched"] as? Int), bytes = try #require(record["bytes_fetched"] as? Int)
        #expect(fetched == 1, "only the late row is fetched in full, not the 100 rows v2 holds")
        #expect(bytes < 4000 + 101 * 64, "\(bytes) bytes fetched")
        let keys = try ExactlyOnceTests.publishedKeys(ws)
        #expect(keys.sorted() == (try ExactlyOnceTests.tableKeys(ws)).sorted() && Set(keys).count == keys.count, "every committed row, once")
    }

    @Test(arguments: ["before the partitions read", "after the commit"])
    func aRowCommittedLateIsPublishedOnce(when: String) throws {
        let ws = try Workspace("partlate")
        try ExactlyOnceTests.setUp(ws, cursor: "id")
        try ws.sql("INSERT INTO $S.events (note) SELECT 'early ' || g FROM generate_series(1, 50) AS g")
        #expect(try ws.etl("run", "fb").status == 0)

        let a = try PostgresConnection(conninfo: "")
        try a.execute("BEGIN")
        try a.execute("INSERT INTO \(ws.schema).events (note) VALUES ('late A')")
        try ws.sql("INSERT INTO $S.events (note) SELECT 'B ' || g FROM generate_series(1, 40) AS g")
        try PartitionTests.plan(ws, runId: "r", count: 3)
        if when == "before the partitions read" { try a.execute("COMMIT") }
        try PartitionTests.runPartitions(ws, runId: "r", count: 3)
        let committed = try ws.etl("commit", "fb", "--run", "r")
        #expect(committed.status == 0, "\(committed.output)")
        if when == "after the commit" { try a.execute("COMMIT") }

        let next = try ws.etl("run", "fb")
        #expect(next.status == 0, "\(next.output)")
        let keys = try ExactlyOnceTests.publishedKeys(ws)
        #expect(keys.sorted() == (try ExactlyOnceTests.tableKeys(ws)).sorted(), "every committed row (\(keys.count) published)")
        #expect(Set(keys).count == keys.count, "no row twice")
        let idle = try ws.etl("run", "fb")
        #expect(idle.status == 0 && idle.stdout.contains("nothing new"), "\(idle.output)")
    }
}
