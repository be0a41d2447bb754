import Foundation
import Dataset
import Testing

@Suite("etl pin / unpin / gc")
struct ToolsGcTests {
    @Test func gcRemovesOldVersionsButNeverNewestOrPinnedAndKeepsSharedShards() throws {
        let ws = try Workspace("gc")
        try seedFeedback(ws, count: 30)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)              // v1
        try seedFeedback(ws, from: 31, count: 10)
        #expect(try ws.etl("run", "fb").status == 0)              // v2 shares v1's shards
        try seedFeedback(ws, from: 41, count: 10)
        #expect(try ws.etl("run", "fb").status == 0)              // v3
        #expect(try ws.etl("run", "fb", "--full").status == 0)    // v4: a rebuild, its own shards
        #expect(ws.versions("fb") == ["v1", "v2", "v3", "v4"])

        let pin = try ws.etl("pin", "fb@v2")
        #expect(pin.status == 0 && pin.stdout == "fb@v2 is now pinned\n", "\(pin.output)")
        #expect(try ws.etl("pin", "fb@v2").stdout == "fb@v2 was already pinned\n")
        #expect(try ws.etl("pin", "fb@v9").status == 7)
        #expect(try String(contentsOf: ws.datasets.appendingPathComponent("fb/pins.json"), encoding: .utf8).contains("\"v2\""))

        // What gc frees: shards v1 or v3 list that neither v2 (pinned) nor v4 (newest) lists.
        let kept = Set(try ws.shardFiles("fb", "v2").keys).union(try ws.shardFiles("fb", "v4").keys)
        let freed = Set(try ws.shardFiles("fb", "v1").keys).union(try ws.shardFiles("fb", "v3").keys).subtracting(kept)
        #expect(!freed.isEmpty)
        let v3Files = try ws.shardFiles("fb", "v3")
        let freedBytes = try freed.reduce(0) { $0 + (try Data(contentsOf: v3Files[$1] ?? ws.shardFiles("fb", "v1")[$1]!)).count }

        let dry = try ws.etl("gc", "fb", "--keep", "1", "--dry-run")
        #expect(dry.status == 0, "\(dry.output)")
        let size = freedBytes < 1024 ? "\(freedBytes) B" : String(format: "%.1f KiB", Double(freedBytes) / 1024)
        expectSameOutput(normalizedOutput(dry.stdout, ws), """
            fb: would remove v1 v3; would free \(freed.count) shard files, \(size)
            kept v2: pinned
            keeping v2 v4
            \(freed.sorted().map { "  " + $0 }.joined(separator: "\n"))

            """.replacing(/[0-9a-f]{12,}/) { String(repeating: "#", count: $0.output.count) })
        #expect(ws.versions("fb") == ["v1", "v2", "v3", "v4"], "--dry-run removed something")

        let gc = try ws.etl("gc", "fb", "--keep", "1")
        #expect(gc.status == 0, "\(gc.output)")
        #expect(gc.stdout.hasPrefix("fb: removed v1 v3; freed \(freed.count) shard files, \(size)\n"), "\(gc.stdout)")
        #expect(ws.versions("fb") == ["v2", "v4"])
        #expect(ws.datasetEntries("fb").allSatisfy { !$0.hasPrefix(".gc-") })
        // v2's shards, which v1 wrote and shared, are still there and whole.
        let verify = try ws.etl("verify", "fb", "--all")
        #expect(verify.status == 0, "\(verify.output)")
        #expect(try ws.allSamples("fb", "v2").count == 40)

        // Newest and pinned survive any age; after unpin, v2 goes.
        let byAge = try ws.etl("gc", "fb", "--older-than", "0s")
        #expect(byAge.stdout.contains("nothing to remove") && byAge.stdout.contains("kept v2: pinned") && byAge.stdout.contains("kept v4: newest version"), "\(byAge.stdout)")
        #expect(try ws.etl("unpin", "fb@v2").stdout == "fb@v2 is now not pinned\n")
        #expect(try ws.etl("gc", "fb", "--older-than", "0s").status == 0)
        #expect(ws.versions("fb") == ["v4"])
        #expect(try ws.etl("verify", "fb").status == 0)

        // A run on top still works (its parent is the newest version, never removed).
        try seedFeedback(ws, from: 51, count: 5)
        #expect(try ws.etl("run", "fb").status == 0)
        #expect(ws.versions("fb") == ["v4", "v5"])

        #expect(try ws.etl("gc", "fb").status == 2, "a rule is required")
        #expect(try ws.etl("gc", "fb", "--keep", "0").status == 2)
    }

    @Test func gcPinAndForgetRefuseWhileARunHoldsTheLock() throws {
        let ws = try Workspace("gclock")
        try seedFeedback(ws, count: 5)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        try seedFeedback(ws, from: 6, count: 5)
        // A run paused just before its commit holds the dataset lock (it waits until the gate file exists).
        let pause = ws.directory.appendingPathComponent("pause")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: etlBinary)
        process.arguments = ["run", "fb"]
        process.currentDirectoryURL = ws.directory
        process.environment = ProcessInfo.processInfo.environment.merging(["ETL_TEST_PAUSE_BEFORE_COMMIT": pause.path]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let ready = { ((try? FileManager.default.contentsOfDirectory(atPath: ws.directory.path)) ?? []).contains { $0.hasPrefix("pause.ready.") } }
        for _ in 0..<600 where !ready() { usleep(50_000) }
        #expect(ready(), "the run never reached its commit")
        let gc = try ws.etl("gc", "fb", "--keep", "1")
        #expect(gc.status == 6, "\(gc.output)")
        #expect(gc.stderr.contains("another run holds this dataset's lock"), "\(gc.stderr)")
        #expect(try ws.etl("pin", "fb@v1").status == 6)
        #expect(try ws.etl("forget", "fb", "--key", "1").status == 6)
        try Data().write(to: pause)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(ws.versions("fb") == ["v1", "v2"])
    }
}
