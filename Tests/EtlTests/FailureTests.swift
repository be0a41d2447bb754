import Foundation
import Testing

/// Every failure must say what and where, exit with its documented code, publish nothing, and leave the cursor
/// (the newest manifest) where it was, so the next good run picks up exactly the unpublished rows.
@Suite("etl run: failures lose nothing")
struct FailureTests {
    @Test func unreachableDatabaseExits3() throws {
        let ws = try Workspace("unreach")
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "source:\n", with: "source:\n  connection: \"host=127.0.0.1 port=1 dbname=x connect_timeout=3\"\n"))
        let result = try ws.etl("run", "fb")
        #expect(result.status == 3, "\(result.output)")
        #expect(result.stderr.contains("127.0.0.1") && result.stderr.lowercased().contains("connect"))
        #expect(ws.versions("fb").isEmpty)
        #expect(ws.datasetEntries("fb").allSatisfy { !$0.hasPrefix(".staging") })
    }

    @Test func authenticationFailureExits3WithoutLeakingThePassword() throws {
        let ws = try Workspace("auth")
        let role = "\(ws.schema)_user"
        try ws.sql("CREATE ROLE \(role) LOGIN PASSWORD 'right-password'")
        defer { try? ws.sql("DROP ROLE IF EXISTS \(role)") }
        let port = ProcessInfo.processInfo.environment["ETL_TEST_PG_TCP_PORT"] ?? "5432"
        let database = ProcessInfo.processInfo.environment["PGDATABASE"] ?? "etl_test"
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(
            of: "source:\n", with: "source:\n  connection: \"postgresql://\(role):Sup3rSecretWrong@127.0.0.1:\(port)/\(database)\"\n"))
        let result = try ws.etl("run", "fb")
        #expect(result.status == 3, "\(result.output)")
        #expect(result.stderr.lowercased().contains("password authentication failed") || result.stderr.lowercased().contains("authentication"))
        #expect(!result.output.contains("Sup3rSecretWrong"))
        #expect(ws.versions("fb").isEmpty)
    }

    @Test func failingQueryExits4KeepsCursorAndTheNextRunRecovers() throws {
        let ws = try Workspace("query")
        try seedFeedback(ws, count: 20)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        try seedFeedback(ws, from: 21, count: 20)

        // Fails at row 35, after rows 21…34 were already streamed and written to staging.
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "FROM $S.feedback", with: "FROM $S.feedback WHERE id / (id - 35) IS NOT NULL"))
        let failed = try ws.etl("run", "fb")
        #expect(failed.status == 4, "\(failed.output)")
        #expect(failed.stderr.contains("22012") && failed.stderr.contains("division by zero"))
        #expect(ws.versions("fb") == ["v1"])
        #expect(ws.datasetEntries("fb") == [".lock", "LATEST", "runs.jsonl", "v1"])

        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        let v2 = try ws.manifest("fb", "v2")
        #expect(v2.cursor.from == "20" && v2.cursor.to == "40" && v2.counts.newSamples == 20)
        #expect(try ws.allSamples("fb", "v2").count == 40)
    }

    @Test func syntaxErrorInTheQueryExits4WithTheServerMessage() throws {
        let ws = try Workspace("syntax")
        try seedFeedback(ws, count: 3)
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "SELECT id,", with: "SELEC id,"))
        let result = try ws.etl("run", "fb")
        #expect(result.status == 4, "\(result.output)")
        #expect(result.stderr.contains("42601") && result.stderr.contains("syntax error"))
    }

    @Test func missingColumnIsAConfigErrorNamingIt() throws {
        let ws = try Workspace("missing")
        try seedFeedback(ws, count: 3)
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "  - name: score\n", with: "  - name: score\n  - name: scroe_delta\n    from: scroe\n"))
        let result = try ws.etl("run", "fb")
        #expect(result.status == 2, "\(result.output)")
        #expect(result.stderr.contains("pipelines/fb.yaml:11:11: error: source column 'scroe' is not a column of the query's result (did you mean 'score'?)"))
        #expect(ws.versions("fb").isEmpty)
    }

    @Test func writeFailureExits5AndPublishesNothing() throws {
        let ws = try Workspace("write")
        try seedFeedback(ws, count: 10)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        try seedFeedback(ws, from: 11, count: 300)
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "size_limit: 4KiB", with: "size_limit: 1MiB"))
        // A file-size limit makes writes fail with EFBIG, like a full disk, at a point inside the run.
        let result = try runProcess("/bin/sh", ["-c", "ulimit -f 16 && exec \"$0\" run fb", etlBinary], cwd: ws.directory)
        #expect(result.status == 5, "\(result.output)")
        #expect(result.stderr.contains("File too large"))
        #expect(ws.versions("fb") == ["v1"])
        #expect(ws.datasetEntries("fb") == [".lock", "LATEST", "runs.jsonl", "v1"])
        let retry = try ws.etl("run", "fb")
        #expect(retry.status == 0, "\(retry.output)")
        #expect(try ws.manifest("fb", "v2").counts.newSamples == 300)
        #expect(try ws.manifest("fb", "v2").cursor.from == "10")
    }

    @Test func overlappingRunExits6() throws {
        let ws = try Workspace("lock")
        try seedFeedback(ws, count: 3)
        try ws.writePipeline("fb", basicPipeline)
        let lockFile = ws.datasets.appendingPathComponent("fb/.lock")
        try FileManager.default.createDirectory(at: lockFile.deletingLastPathComponent(), withIntermediateDirectories: true)
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["-n", lockFile.path, "sleep", "8"]
        try holder.run()
        defer { holder.terminate(); holder.waitUntilExit() }
        usleep(300_000)
        let result = try ws.etl("run", "fb")
        #expect(result.status == 6, "\(result.output)")
        #expect(result.stderr.contains("another run holds this dataset's lock"))
        #expect(ws.versions("fb").isEmpty)
    }

    @Test func killedRunLeavesNoVersionAndTheNextRunCleansUp() throws {
        let ws = try Workspace("kill")
        try seedFeedback(ws, count: 200)
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "FROM $S.feedback", with: "FROM $S.feedback WHERE pg_sleep(0.02) IS NOT NULL"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: etlBinary)
        process.arguments = ["run", "fb"]
        process.currentDirectoryURL = ws.directory
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while !ws.datasetEntries("fb").contains(where: { $0.hasPrefix(".staging") }) && Date() < deadline { usleep(20_000) }
        usleep(500_000)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(ws.versions("fb").isEmpty)
        #expect(ws.datasetEntries("fb").contains { $0.hasPrefix(".staging") }, "the kill should have hit mid-run")

        try ws.writePipeline("fb", basicPipeline)
        let next = try ws.etl("run", "fb")
        #expect(next.status == 0, "\(next.output)")
        #expect(next.stderr.contains("left by an interrupted run"))
        #expect(ws.datasetEntries("fb") == [".lock", "LATEST", "runs.jsonl", "v1"])
        #expect(try ws.manifest("fb", "v1").counts.samples == 200)
    }

    @Test func changedSchemaAsksForAFullRebuild() throws {
        let ws = try Workspace("schema")
        try seedFeedback(ws, count: 5)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        try seedFeedback(ws, from: 6, count: 5)
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "  - name: score\n", with: "  - name: score\n    encoding: float32\n"))
        let result = try ws.etl("run", "fb")
        #expect(result.status == 2, "\(result.output)")
        #expect(result.stderr.contains("run with --full"))
        #expect(try ws.etl("run", "fb", "--full").status == 0)
        #expect(ws.versions("fb") == ["v1", "v2"])
    }
}

/// A real full disk (a small tmpfs that scripts/test mounts): exit 5 naming the file, nothing published, no debris.
@Suite struct DiskFullTests {
    static var directory: String? { ProcessInfo.processInfo.environment["ETL_TEST_FULL_DIR"] }

    @Test(.enabled(if: directory != nil, "needs a small tmpfs; scripts/test mounts one when run as root"))
    func fullDiskExits5AndLeavesNothingBehind() throws {
        let ws = try Workspace("full")
        try ws.sql("CREATE TABLE $S.big (id bigint, payload bytea)")
        // ~2 MB of incompressible bytes into a 1 MiB file system.
        try ws.sql("INSERT INTO $S.big SELECT g, decode(string_agg(md5(g::text || '-' || i::text), ''), 'hex') FROM generate_series(1, 64) g, generate_series(1, 2000) i GROUP BY g")
        let root = URL(fileURLWithPath: Self.directory!).appendingPathComponent(ws.schema).path
        try ws.writePipeline("big", """
            name: big
            output_root: \(root)
            source:
              query: SELECT id, payload FROM $S.big
              cursor_column: id
              key_column: id
            columns:
              - name: payload
            shards: {size_limit: 256KiB}
            """)
        let result = try ws.etl("run", "big")
        #expect(result.status == 5, "\(result.output)")
        #expect(result.stderr.contains("No space left on device"))
        let left = (try? FileManager.default.contentsOfDirectory(atPath: root + "/big")) ?? []
        #expect(left.sorted() == [".lock", "runs.jsonl"], "left behind: \(left) (the ledger records the failed run)")
        try? FileManager.default.removeItem(atPath: root)
    }
}
