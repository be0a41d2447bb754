import Foundation
import Dataset
import MDS
import Testing

/// A labels table whose rows get corrected: `updated_at` moves when a row changes.
private func seedLabels(_ ws: Workspace, from first: Int = 1, count: Int) throws {
    if first == 1 {
        try ws.sql("""
            CREATE TABLE $S.labels (id bigint PRIMARY KEY, user_id bigint NOT NULL, label text NOT NULL, note text NOT NULL,
                                    updated_at timestamptz NOT NULL)
            """)
    }
    try ws.sql("""
        INSERT INTO $S.labels
        SELECT g, g % 10, (ARRAY['good','bad','meh'])[1 + g % 3], 'note of row ' || g || ' ' || repeat(md5(g::text), 3),
               timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
        FROM generate_series(\(first), \(first + count - 1)) AS g
        """)
}

private let labelsPipeline = """
    name: labels
    source:
      query: SELECT id, user_id, label, note, updated_at FROM $S.labels
      change_column: updated_at
      key_column: id
    columns:
      - name: user_id
      - name: label
      - name: note
    split:
      group_column: user_id
      seed: s1
      ratios: {train: 0.6, val: 0.2, test: 0.2}
    shards:
      size_limit: 2KiB
    """

/// Every `__key__` of a version with how many samples carry it (allSamples would hide a second one).
private func keyCounts(_ ws: Workspace, _ dataset: String, _ version: String) throws -> [String: Int] {
    var counts: [String: Int] = [:]
    for split in try ws.manifest(dataset, version).splits.keys {
        try MDSReader(directory: ws.versionDirectory(dataset, version).appendingPathComponent(split)).forEachSample(verifyHashes: true) { sample in
            if case .string(let key)? = sample["__key__"] { counts[key, default: 0] += 1 }
        }
    }
    return counts
}

@Suite("source.change_column: a corrected row replaces its sample")
struct ReplaceTests {
    @Test func aRelabelledRowAppearsOnceWithItsNewLabelAndOnlyItsShardIsRewritten() throws {
        let ws = try Workspace("replace")
        try seedLabels(ws, count: 60)
        try ws.writePipeline("labels", labelsPipeline)
        let first = try ws.etl("run", "labels")
        #expect(first.status == 0, "\(first.output)")
        let v1Files = try ws.shardFiles("labels", "v1")
        let v1Inodes = try v1Files.mapValues(inode)
        let holding = try v1Files.filter { try shardKeys($0.value, ws: ws, version: "v1").contains("7") }
        try #require(holding.count == 1)
        let (oldName, oldURL) = holding.first!
        let neighbours = try shardKeys(oldURL, ws: ws, version: "v1").filter { $0 != "7" }

        // Row 7 is relabelled (its updated_at moves), and ten new rows arrive.
        try ws.sql("UPDATE $S.labels SET label = 'relabelled', updated_at = timestamptz '2026-06-01 00:00:00+00' WHERE id = 7")
        try seedLabels(ws, from: 61, count: 10)
        let second = try ws.etl("run", "labels")
        #expect(second.status == 0, "\(second.output)")
        #expect(second.output.contains("replaced 1 samples of earlier versions"), "\(second.output)")

        let counts = try keyCounts(ws, "labels", "v2")
        #expect(counts.count == 70 && counts.values.allSatisfy { $0 == 1 }, "a key is held twice: \(counts.filter { $0.value > 1 })")
        let v2 = try ws.allSamples("labels", "v2")
        #expect(v2["7"]?.values["label"] == .string("relabelled"))
        let manifest = try ws.manifest("labels", "v2")
        #expect(manifest.counts.replaced == 1 && manifest.counts.newSamples == 11 && manifest.counts.samples == 70)
        #expect(manifest.keyIndex == KeyIndex.fileName)
        let card = try String(contentsOf: ws.versionDirectory("labels", "v2").appendingPathComponent("README.md"), encoding: .utf8)
        #expect(card.contains("- 1 sample of earlier versions replaced by their changed source row (`source.change_column`)"), "\(card)")

        // The shard that held the old sample is gone from v2, rewritten as a new file with its other samples; every
        // other shard of v1 is the very same file (same inode), still shared.
        let v2Files = try ws.shardFiles("labels", "v2")
        #expect(v2Files[oldName] == nil)
        for (name, old) in v1Inodes where name != oldName {
            let url = try #require(v2Files[name], "v2 lost untouched shard \(name)")
            #expect(try inode(url) == old, "\(name) is not shared")
        }
        let rewritten = v2Files.filter { v1Files[$0.key] == nil && (try? shardKeys($0.value, ws: ws, version: "v2"))?.contains(neighbours.first ?? "") == true }
        try #require(rewritten.count == 1, "the rewrite of \(oldName) is not listed once")
        #expect(try shardKeys(rewritten.first!.value, ws: ws, version: "v2") == neighbours)
        // v1 is as it was.
        #expect(try ws.allSamples("labels", "v1")["7"]?.values["label"] == .string("bad"))

        // verify agrees, and diff shows row 7 as changed (label), the ten rows as added, nothing removed.
        let verify = try ws.etl("verify", "labels", "--all")
        #expect(verify.status == 0, "\(verify.output)")
        let diffRun = try ws.etl("diff", "labels@v1", "labels@v2", "--json")
        #expect(diffRun.status == 0, "\(diffRun.output)")
        let diff = try JSONDecoder().decode(VersionDiff.self, from: Data(diffRun.stdout.utf8))
        #expect(diff.changed.map(\.key) == ["7"] && diff.changed.first?.columns == ["label"])
        #expect(diff.added.count == 10 && diff.removed.isEmpty)

        // Corrected again: the sample v2 wrote is replaced in turn; a run with nothing changed publishes nothing.
        try ws.sql("UPDATE $S.labels SET label = 'again', updated_at = timestamptz '2026-07-01 00:00:00+00' WHERE id IN (7, 33)")
        let third = try ws.etl("run", "labels")
        #expect(third.status == 0, "\(third.output)")
        let v3 = try ws.allSamples("labels", "v3")
        #expect(try keyCounts(ws, "labels", "v3").values.allSatisfy { $0 == 1 } && v3.count == 70)
        #expect(v3["7"]?.values["label"] == .string("again") && v3["33"]?.values["label"] == .string("again"))
        #expect(try ws.manifest("labels", "v3").counts.replaced == 2)
        #expect(try ws.etl("run", "labels").status == 0 && ws.versions("labels") == ["v1", "v2", "v3"])
        #expect(try ws.etl("verify", "labels", "--all").status == 0)
    }

    @Test func forgetUpdatesTheKeyIndexAndAForgottenRowStaysOutWhenItChanges() throws {
        let ws = try Workspace("replaceforget")
        try seedLabels(ws, count: 40)
        try ws.writePipeline("labels", labelsPipeline)
        #expect(try ws.etl("run", "labels").status == 0)
        let forget = try ws.etl("forget", "labels", "--key", "7", "--reason", "request")
        #expect(forget.status == 0, "\(forget.output)")
        // The index no longer names key 7, and names the rewritten file for its neighbours.
        let index = try KeyIndex(path: ws.versionDirectory("labels", "v1").appendingPathComponent(KeyIndex.fileName).path)
        #expect(index.shards(holding: "7").isEmpty && index.keyCount == 39)
        let files = try ws.shardFiles("labels", "v1")
        for key in ["1", "8", "40"] {
            let named = index.shards(holding: key)
            #expect(named.count == 1 && files[named[0]] != nil, "key \(key) → \(named)")
            #expect(try shardKeys(files[named[0]]!, ws: ws, version: "v1").contains(key))
        }
        // Both rows change in the source: 7 stays forgotten, 8 replaces its sample.
        try ws.sql("UPDATE $S.labels SET label = 'fixed', updated_at = timestamptz '2026-06-01 00:00:00+00' WHERE id IN (7, 8)")
        let run = try ws.etl("run", "labels")
        #expect(run.status == 0, "\(run.output)")
        let counts = try keyCounts(ws, "labels", "v2")
        #expect(counts["7"] == nil && counts["8"] == 1 && counts.count == 39)
        #expect(try ws.allSamples("labels", "v2")["8"]?.values["label"] == .string("fixed"))
        #expect(try ws.etl("verify", "labels", "--all").status == 0)
    }

    @Test func aRunKilledAfterReplacingResumesAndPublishesWhatAnUninterruptedRunWould() throws {
        let ws = try Workspace("replaceresume")
        try seedLabels(ws, count: 40)
        let pipeline = labelsPipeline.replacingOccurrences(of: "  size_limit: 2KiB", with: "  size_limit: 2KiB\n  checkpoint_every: 1KiB")
        try ws.writePipeline("labels", pipeline)
        try ws.writePipeline("calm", pipeline.replacingOccurrences(of: "name: labels", with: "name: calm"))
        #expect(try ws.etl("run", "labels").status == 0 && ws.etl("run", "calm").status == 0)
        // Three rows are corrected (updated_at just past v1's cursor, so the first checkpoint covers them); 60 new rows follow.
        try ws.sql("UPDATE $S.labels SET label = 'fixed', updated_at = timestamptz '2026-01-01 00:40:30+00' + id * interval '1 ms' WHERE id IN (3, 5, 38)")
        try seedLabels(ws, from: 41, count: 60)
        #expect(try ws.etl("run", "calm").status == 0)

        let gate = ws.directory.appendingPathComponent("gate").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: etlBinary)
        process.arguments = ["run", "labels"]
        process.currentDirectoryURL = ws.directory
        process.environment = ProcessInfo.processInfo.environment.merging(["ETL_TEST_PAUSE_AFTER_CHECKPOINT": gate]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        func paused() -> Bool {
            ((try? FileManager.default.contentsOfDirectory(atPath: ws.directory.path)) ?? []).contains { $0.hasPrefix("gate.ready.") }
        }
        let deadline = Date().addingTimeInterval(30)
        while !paused() && Date() < deadline { usleep(20_000) }
        #expect(paused(), "the run reached a checkpoint")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(ws.versions("labels") == ["v1"])
        // The checkpoint covers the three corrected rows (read first): the resumed run must learn from the kept shards
        // which parent samples they replace.
        let staging = try #require(ws.datasetEntries("labels").first { $0.hasPrefix(".staging-") })
        let checkpoint = try #require(FileManager.default.contents(atPath: ws.datasets.appendingPathComponent("labels/\(staging)/checkpoint.json").path))
        let rowsAtCheckpoint = try #require(try JSONSerialization.jsonObject(with: checkpoint) as? [String: Any])["rowsRead"] as? Int
        #expect((rowsAtCheckpoint ?? 0) > 3 && (rowsAtCheckpoint ?? 0) < 63, "killed at \(rowsAtCheckpoint ?? 0) rows")

        let resumed = try ws.etl("run", "labels")
        #expect(resumed.status == 0 && resumed.stderr.contains("resuming run"), "\(resumed.output)")
        let manifest = try ws.manifest("labels", "v2")
        #expect(manifest.counts.replaced == 3 && manifest.counts.samples == 100, "\(manifest.counts)")
        let counts = try keyCounts(ws, "labels", "v2")
        #expect(counts.count == 100 && counts.values.allSatisfy { $0 == 1 })
        // The same shards, index and key index as the uninterrupted run's.
        for file in ["train/index.json", "val/index.json", "test/index.json", KeyIndex.fileName] {
            let a = FileManager.default.contents(atPath: ws.versionDirectory("labels", "v2").appendingPathComponent(file).path)
            let b = FileManager.default.contents(atPath: ws.versionDirectory("calm", "v2").appendingPathComponent(file).path)
            #expect(a != nil && a == b, "\(file) differs from the uninterrupted run's")
        }
    }

    @Test func cursorAndChangeColumnMustAgree() throws {
        let ws = try Workspace("replaceconfig")
        try ws.writePipeline("labels", labelsPipeline.replacingOccurrences(of: "  key_column: id", with: "  key_column: id\n  cursor_column: id"))
        let result = try ws.etl("validate", "labels", "--offline")
        #expect(result.status == 2)
        #expect(result.output.contains("labels.yaml:6:18: error: cursor_column 'id' differs from change_column 'updated_at'"), "\(result.output)")
    }
}
