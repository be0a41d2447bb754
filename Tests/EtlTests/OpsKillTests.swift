import Foundation
import Testing

/// SIGKILL at each stage of a run, held there by a test hook so the point is the one named, then a rerun: the version
/// it publishes is byte-identical to an uninterrupted run's, and it fetched from the source only the rows that no
/// checkpoint had sealed (`rows_fetched` of its ledger record).
@Suite struct OpsKillTests {
    struct KillPoint: CustomTestStringConvertible, Sendable {
        /// The TestHooks point (`ETL_TEST_PAUSE_<hook>`) and from which pass (for TRANSFORM: at which key) it holds.
        var hook: String
        var at: Int
        /// Whether every row is sealed and checkpointed by then (the rerun fetches nothing).
        var allSealed: Bool
        var testDescription: String { "\(hook) #\(at)" }
    }

    static let rows = 300

    static let points: [KillPoint] = [
        KillPoint(hook: "EXTRACT", at: 150, allSealed: false),
        // A key in the second batch of rows (batches hold up to 256): the first reaches the writer and a checkpoint.
        KillPoint(hook: "TRANSFORM", at: 280, allSealed: false),
        KillPoint(hook: "SHARD_WRITE", at: 150, allSealed: false),
        KillPoint(hook: "AFTER_CHECKPOINT", at: 3, allSealed: false),
        KillPoint(hook: "AFTER_SEAL", at: 1, allSealed: true),
        KillPoint(hook: "BEFORE_COMMIT", at: 1, allSealed: true),
    ]

    @Test(arguments: points)
    func aRunKilledHereIsResumedWithoutRefetchingWhatWasSealed(point: KillPoint) throws {
        let ws = try Workspace("kill")
        try seedFeedback(ws, count: Self.rows)
        try ws.writePipeline("calm", ResumeTests.pipeline.replacingOccurrences(of: "name: fb", with: "name: calm"))
        #expect(try ws.etl("run", "calm").status == 0)
        try ws.writePipeline("fb", ResumeTests.pipeline)

        let gate = ws.directory.appendingPathComponent("gate").path
        let process = try ResumeTests.startRun(ws, environment: [
            "ETL_TEST_PAUSE_\(point.hook)": gate, "ETL_TEST_PAUSE_\(point.hook)_AT": "\(point.at)",
        ])
        func paused() -> Bool {
            ((try? FileManager.default.contentsOfDirectory(atPath: ws.directory.path)) ?? []).contains { $0.hasPrefix("gate.ready.") }
        }
        let deadline = Date().addingTimeInterval(60)
        while !paused() && process.isRunning && Date() < deadline { usleep(20_000) }
        #expect(paused(), "the run reached \(point.hook)")
        // Held at the point, the rest of the run goes on until it waits for the held part (the writer for rows the
        // held extract or worker has not handed over): let it reach a checkpoint, so there is something sealed to keep.
        func checkpointed() -> Bool {
            ResumeTests.staging(ws).map { FileManager.default.fileExists(atPath: $0.appendingPathComponent("checkpoint.json").path) } ?? false
        }
        while !checkpointed() && process.isRunning && Date() < deadline { usleep(20_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(ws.versions("fb").isEmpty)

        // What the dead run had sealed, as the rerun will find it.
        let checkpoint = ResumeTests.staging(ws).flatMap { FileManager.default.contents(atPath: $0.appendingPathComponent("checkpoint.json").path) }
        let sealedRows = try checkpoint.map { data in
            try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["rowsRead"] as? Int)
        } ?? 0
        if point.allSealed {
            #expect(sealedRows == Self.rows, "every row is checkpointed at \(point.hook)")
        } else {
            #expect(sealedRows > 0 && sealedRows < Self.rows, "killed mid-run after a checkpoint: \(sealedRows) rows sealed")
        }

        let rerun = try ws.etl("run", "fb")
        #expect(rerun.status == 0, "\(rerun.output)")
        #expect(rerun.stderr.contains("resuming run"), "\(rerun.stderr)")
        let manifest = try ws.manifest("fb", "v1")
        #expect(manifest.counts.rowsRead == Self.rows && manifest.counts.samples == Self.rows)
        ResumeTests.expectSameShards(ws, "v1", as: "calm")
        #expect(ws.datasetEntries("fb").filter { $0.hasPrefix(".staging") }.isEmpty)

        let record = try #require(try Self.lastLedgerRecord(ws))
        #expect(record["rows_read"] as? Int == Self.rows)
        #expect(record["rows_fetched"] as? Int == Self.rows - sealedRows, "the rerun fetched only what was not sealed")
    }

    static func lastLedgerRecord(_ ws: Workspace, dataset: String = "fb") throws -> [String: Any]? {
        let text = try String(contentsOf: ws.datasets.appendingPathComponent("\(dataset)/runs.jsonl"), encoding: .utf8)
        guard let line = text.split(separator: "\n").last else { return nil }
        return try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    }
}
