import Foundation
import Testing

/// A run killed outright (SIGKILL, OOM, a drained node) resumes from its last checkpoint: the next run keeps the sealed
/// shards, reads only the rows after them, and publishes exactly the shards an uninterrupted run would.
@Suite struct ResumeTests {
    static let pipeline = basicPipeline.replacingOccurrences(of: "  size_limit: 4KiB", with: "  size_limit: 4KiB\n  checkpoint_every: 6KiB")

    static func startRun(_ ws: Workspace, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: etlBinary)
        process.arguments = ["run", "fb"]
        process.currentDirectoryURL = ws.directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    static func staging(_ ws: Workspace) -> URL? {
        ws.datasetEntries("fb").first { $0.hasPrefix(".staging-") }.map { ws.datasets.appendingPathComponent("fb/\($0)") }
    }

    /// The same shards, byte for byte: every split's index.json (which lists each shard's sha256) is equal.
    static func expectSameShards(_ ws: Workspace, _ version: String, as reference: String) {
        for split in ["train", "val", "test"] {
            let a = FileManager.default.contents(atPath: ws.versionDirectory("fb", version).appendingPathComponent("\(split)/index.json").path)
            let b = FileManager.default.contents(atPath: ws.versionDirectory(reference, "v1").appendingPathComponent("\(split)/index.json").path)
            #expect(a != nil && a == b, "\(split)/index.json differs from the uninterrupted run's")
        }
    }

    @Test func killedAfterCheckpointsTheNextRunResumesAndPublishesTheSameShards() throws {
        let ws = try Workspace("resume")
        try seedFeedback(ws, count: 300)
        try ws.writePipeline("calm", Self.pipeline.replacingOccurrences(of: "name: fb", with: "name: calm"))
        #expect(try ws.etl("run", "calm").status == 0)
        try ws.writePipeline("fb", Self.pipeline)
        // The run stops right after its first checkpoint (the gate is never opened) and is killed there.
        let gate = ws.directory.appendingPathComponent("gate").path
        let process = try Self.startRun(ws, environment: ["ETL_TEST_PAUSE_AFTER_CHECKPOINT": gate])
        let deadline = Date().addingTimeInterval(30)
        func paused() -> Bool {
            ((try? FileManager.default.contentsOfDirectory(atPath: ws.directory.path)) ?? []).contains { $0.hasPrefix("gate.ready.") }
        }
        while !paused() && Date() < deadline { usleep(20_000) }
        #expect(paused(), "the run reached a checkpoint")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(ws.versions("fb").isEmpty)
        let checkpoint = try #require(Self.staging(ws).flatMap { FileManager.default.contents(atPath: $0.appendingPathComponent("checkpoint.json").path) })
        let staged = try #require(try JSONSerialization.jsonObject(with: checkpoint) as? [String: Any])
        let rowsAtCheckpoint = try #require(staged["rowsRead"] as? Int)
        #expect(rowsAtCheckpoint > 0 && rowsAtCheckpoint < 300, "killed mid-run: \(rowsAtCheckpoint)")

        let resumed = try ws.etl("run", "fb")
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(resumed.stderr.contains("resuming run") && resumed.stderr.contains("\(rowsAtCheckpoint) rows"), "\(resumed.stderr)")
        let manifest = try ws.manifest("fb", "v1")
        #expect(manifest.counts.rowsRead == 300 && manifest.counts.samples == 300)
        Self.expectSameShards(ws, "v1", as: "calm")
        #expect(ws.datasetEntries("fb").filter { $0.hasPrefix(".staging") }.isEmpty)
    }

    @Test func killedWhilePublishingTheNextRunResumesAndPublishesTheSameShards() throws {
        let ws = try Workspace("resumepub")
        try seedFeedback(ws, count: 200)
        try ws.writePipeline("calm", Self.pipeline.replacingOccurrences(of: "name: fb", with: "name: calm"))
        #expect(try ws.etl("run", "calm").status == 0)
        try ws.writePipeline("fb", Self.pipeline)
        let gate = ws.directory.appendingPathComponent("gate").path
        let process = try Self.startRun(ws, environment: ["ETL_TEST_PAUSE_BEFORE_COMMIT": gate])
        let deadline = Date().addingTimeInterval(30)
        func paused() -> Bool {
            ((try? FileManager.default.contentsOfDirectory(atPath: ws.directory.path)) ?? []).contains { $0.hasPrefix("gate.ready.") }
        }
        while !paused() && Date() < deadline { usleep(20_000) }
        #expect(paused(), "the run reached the commit")
        kill(process.processIdentifier, SIGKILL)  // every shard sealed and the manifest staged, not yet committed
        process.waitUntilExit()
        #expect(ws.versions("fb").isEmpty)
        let resumed = try ws.etl("run", "fb")
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(resumed.stderr.contains("resuming run"), "\(resumed.stderr)")
        #expect(try ws.manifest("fb", "v1").counts.samples == 200)
        Self.expectSameShards(ws, "v1", as: "calm")
    }

    @Test func aCheckpointOfAnotherPipelineFileIsNotResumed() throws {
        let ws = try Workspace("resumecfg")
        try seedFeedback(ws, count: 200)
        try ws.writePipeline("fb", Self.pipeline)
        let gate = ws.directory.appendingPathComponent("gate").path
        let process = try Self.startRun(ws, environment: ["ETL_TEST_PAUSE_BEFORE_COMMIT": gate])
        let deadline = Date().addingTimeInterval(30)
        while !((try? FileManager.default.contentsOfDirectory(atPath: ws.directory.path)) ?? []).contains(where: { $0.hasPrefix("gate.ready.") }),
              Date() < deadline { usleep(20_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // The file changed (another seed for the split): the staged shards cannot be trusted for it.
        try ws.writePipeline("fb", Self.pipeline.replacingOccurrences(of: "seed: s1", with: "seed: s2"))
        let next = try ws.etl("run", "fb")
        #expect(next.status == 0, "\(next.output)")
        #expect(!next.stderr.contains("resuming run") && next.stderr.contains("left by an interrupted run"), "\(next.stderr)")
        #expect(try ws.manifest("fb", "v1").counts.samples == 200)
    }
}
