import Foundation
import Testing

@Suite struct RetryTests {
    @Test func aBackendTerminatedMidExtractIsRetriedAndPublishesWhatAnUndisturbedRunWould() throws {
        let ws = try Workspace("retry")
        try seedFeedback(ws, count: 150)
        let slow = basicPipeline
            .replacingOccurrences(of: "FROM $S.feedback", with: "FROM $S.feedback WHERE pg_sleep(0.01) IS NOT NULL")
            .replacingOccurrences(of: "  key_column: id\n", with: "  key_column: id\n  retry: {attempts: 3, initial_delay_s: 0.2, max_delay_s: 1}\n")
        try ws.writePipeline("fb", slow)
        try ws.writePipeline("calm", basicPipeline.replacingOccurrences(of: "name: fb", with: "name: calm"))
        #expect(try ws.etl("run", "calm").status == 0)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: etlBinary)
        process.arguments = ["run", "fb"]
        process.currentDirectoryURL = ws.directory
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Terminate the run's backend once it is streaming this test's query.
        var killed = false
        let deadline = Date().addingTimeInterval(20)
        while !killed && Date() < deadline {
            let result = try ws.db.query("""
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE state = 'active' AND query LIKE '%etl_source%' AND query LIKE '%\(ws.schema).feedback%pg_sleep%'
                  AND pid <> pg_backend_pid()
                """)
            killed = !result.rows.isEmpty
            if !killed { usleep(20_000) }
        }
        #expect(killed, "the run's backend was found and terminated")
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(stderr)")
        #expect(stderr.contains("retry 1 of 3"), "\(stderr)")
        #expect(ws.versions("fb") == ["v1"])
        // The same shards, byte for byte (names are content hashes), as the undisturbed run of the same source.
        for split in ["train", "val", "test"] {
            let a = ws.versionDirectory("fb", "v1").appendingPathComponent("\(split)/index.json")
            let b = ws.versionDirectory("calm", "v1").appendingPathComponent("\(split)/index.json")
            #expect(FileManager.default.contents(atPath: a.path) == FileManager.default.contents(atPath: b.path), "\(split)/index.json differs")
        }
    }

    @Test func aFaultThatOutlastsTheRetriesFailsWithTheDocumentedCode() throws {
        let ws = try Workspace("retryout")
        try seedFeedback(ws, count: 3)
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(
            of: "source:\n", with: "source:\n  connection: \"host=127.0.0.1 port=1 connect_timeout=2\"\n  retry: {attempts: 2, initial_delay_s: 0.1}\n"))
        let result = try ws.etl("run", "fb")
        #expect(result.status == 3, "\(result.output)")
        #expect(result.stderr.contains("retry 1 of 2") && result.stderr.contains("retry 2 of 2"), "\(result.stderr)")
        #expect(!result.stderr.contains("retry 3"))
    }
}
