import Foundation
import Testing

/// Publishing is one commit: the store's compare-and-swap. These tests race real processes, break the derived LATEST
/// pointer, and feed the defects found from outside (a malformed connection string, unusable output roots).
@Suite struct PublishTests {
    @Test func twoRunsRacingToPublishTheSameVersionExactlyOneWins() throws {
        let ws = try Workspace("race")
        try seedFeedback(ws, count: 20)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        try seedFeedback(ws, from: 21, count: 30)
        // Both runs skip the lock (which would stop the second at once) and wait at the commit until both are there,
        // so only the store's compare-and-swap decides.
        let gate = ws.directory.appendingPathComponent("gate").path
        let environment = ["ETL_TEST_SKIP_LOCK": "1", "ETL_TEST_PAUSE_BEFORE_COMMIT": gate]
        let runs = (0..<2).map { _ in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: etlBinary)
            process.arguments = ["run", "fb"]
            process.currentDirectoryURL = ws.directory
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let err = Pipe()
            process.standardError = err
            process.standardOutput = FileHandle.nullDevice
            return (process, err)
        }
        for (process, _) in runs { try process.run() }
        let deadline = Date().addingTimeInterval(60)
        func ready() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: ws.directory.path)) ?? []).filter { $0.hasPrefix("gate.ready.") }.count
        }
        while ready() < 2 && Date() < deadline { usleep(20_000) }
        #expect(ready() == 2, "both runs should reach the commit")
        #expect(ws.datasetEntries("fb").filter { $0.hasPrefix(".staging-") }.count == 2)
        FileManager.default.createFile(atPath: gate, contents: nil)
        var statuses: [Int32] = []
        var messages: [String] = []
        for (process, err) in runs {
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            statuses.append(process.terminationStatus)
            messages.append(text)
        }
        #expect(statuses.sorted() == [0, 6], "\(messages)")
        #expect(messages.contains { $0.contains("nothing was published, rerun to build on it") }, "the loser says it lost the race: \(messages)")
        #expect(ws.versions("fb") == ["v1", "v2"])
        #expect(ws.datasetEntries("fb") == [".lock", "LATEST", "runs.jsonl", "v1", "v2"], "the loser leaves nothing (.lock is from the first run)")
        #expect(try ws.manifest("fb", "v2").counts.newSamples == 30)
        #expect(try ws.allSamples("fb", "v2").count == 50)
    }

    @Test func aStaleLatestIsRepairedByTheNextRunAndByReaders() throws {
        let ws = try Workspace("latest")
        try seedFeedback(ws, count: 5)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        try seedFeedback(ws, from: 6, count: 5)
        #expect(try ws.etl("run", "fb").status == 0)
        let latest = ws.datasets.appendingPathComponent("fb/LATEST")
        // As if the run had died between publishing v2 and updating LATEST.
        try "v1\n".write(to: latest, atomically: true, encoding: .utf8)
        let inspect = try ws.etl("inspect", "fb")
        #expect(inspect.status == 0 && inspect.stdout.contains("fb@v2"), "readers go by the versions, not LATEST")
        #expect(try String(contentsOf: latest, encoding: .utf8) == "v2\n", "inspect repaired LATEST")
        try "v1\n".write(to: latest, atomically: true, encoding: .utf8)
        let run = try ws.etl("run", "fb")
        #expect(run.status == 0, "\(run.output)")
        #expect(run.stdout.contains("nothing new since v2"))
        #expect(run.stderr.contains("LATEST now names v2"))
        #expect(try String(contentsOf: latest, encoding: .utf8) == "v2\n")
    }

    @Test func aLatestThatCannotBeWrittenDoesNotFailAPublishedRun() throws {
        let ws = try Workspace("latestdir")
        try seedFeedback(ws, count: 5)
        try ws.writePipeline("fb", basicPipeline)
        // A directory where LATEST should be: every write of it fails, as on a full disk.
        try FileManager.default.createDirectory(at: ws.datasets.appendingPathComponent("fb/LATEST/x"), withIntermediateDirectories: true)
        let run = try ws.etl("run", "fb")
        #expect(run.status == 0, "the version is published and the cursor moved, so this is success: \(run.output)")
        #expect(ws.versions("fb") == ["v1"])
        try seedFeedback(ws, from: 6, count: 5)
        let next = try ws.etl("run", "fb")
        #expect(next.status == 0, "\(next.output)")
        #expect(try ws.manifest("fb", "v2").cursor.from == "5", "the next run builds on v1, not on a stale pointer")
    }

    @Test func aMalformedConnectionStringIsAConfigErrorAtItsLine() throws {
        let ws = try Workspace("conninfo")
        try seedFeedback(ws, count: 1)
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "source:\n", with: "source:\n  connection: \"host=localhost port\"\n"))
        for command in ["run", "validate"] {
            let result = try ws.etl(command, "fb")
            #expect(result.status == 2, "\(command): \(result.output)")
            #expect(result.stderr.contains("fb.yaml:3:"), "\(command): located at the connection line: \(result.stderr)")
            #expect(result.stderr.contains("connection string"), "\(command): \(result.stderr)")
        }
    }

    @Test func anOutputRootThatCannotBeCreatedIsReportedWithPathAndReason() throws {
        let ws = try Workspace("badroot")
        try seedFeedback(ws, count: 3)
        try ws.writePipeline("fb", "output_root: /proc/etl-datasets\n" + basicPipeline)
        let validate = try ws.etl("validate", "--offline", "fb")
        #expect(validate.status == 2, "\(validate.output)")
        #expect(validate.stderr.contains("fb.yaml:1:") && validate.stderr.contains("/proc/etl-datasets"), "\(validate.stderr)")
        let run = try ws.etl("run", "fb")
        #expect(run.status == 5, "\(run.output)")
        #expect(run.stderr.contains("/proc/etl-datasets") && run.stderr.contains("errno"), "names the path and errno: \(run.stderr)")
    }

    @Test func anObjectStoreUrlIsRefusedNotWrittenToALocalDirectory() throws {
        let ws = try Workspace("s3root")
        try seedFeedback(ws, count: 3)
        try ws.writePipeline("fb", "output_root: gs://bucket/prefix\n" + basicPipeline)
        for arguments in [["validate", "--offline", "fb"], ["run", "fb"]] {
            let result = try runProcess(etlBinary, arguments, cwd: ws.directory)
            #expect(result.status == 2, "\(arguments): \(result.output)")
            #expect(result.stderr.contains("fb.yaml:1:") && result.stderr.contains("gs://"), "\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: ws.directory.appendingPathComponent("gs:").path))
    }
}
