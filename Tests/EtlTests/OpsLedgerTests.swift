import Dataset
import Foundation
import Postgres
import Testing

/// Every run — published, nothing new, failed, even before the lock — is one line of `<dataset>/runs.jsonl`, and
/// `etl status` shows them.
@Suite("etl run: the run ledger and etl status")
struct OpsLedgerTests {
    func ledger(_ ws: Workspace, _ dataset: String = "fb") throws -> [[String: Any]] {
        let text = try String(contentsOf: ws.datasets.appendingPathComponent("\(dataset)/runs.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        }
    }

    @Test func publishedNothingNewAndLockedRunsAreRecorded() throws {
        let ws = try Workspace("ledger")
        try seedFeedback(ws, count: 20)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        #expect(try ws.etl("run", "fb").status == 0)
        // A run that finds the lock held fails before it starts: still recorded, without a run id.
        let lockFile = ws.datasets.appendingPathComponent("fb/.lock")
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["-n", lockFile.path, "sleep", "5"]
        try holder.run()
        defer { holder.terminate(); holder.waitUntilExit() }
        usleep(300_000)
        #expect(try ws.etl("run", "fb").status == 6)

        let records = try ledger(ws)
        try #require(records.count == 3, "\(records)")
        let manifest = try ws.manifest("fb", "v1")
        let published = records[0]
        let expectedKeys: Set<String> = [
            "run_id", "pipeline", "dataset", "config_sha256", "host", "pid", "started_at", "ended_at", "duration_seconds",
            "outcome", "exit_code", "failure", "rows_read", "rows_fetched", "bytes_fetched", "samples_written", "deduplicated", "quarantined", "quarantined_by_reason",
            "bytes_read", "bytes_written", "cursor_from", "cursor_to", "parent", "version_published", "error",
        ]
        #expect(Set(published.keys) == expectedKeys)
        #expect(published["run_id"] as? String == manifest.runId)
        #expect(published["outcome"] as? String == "published")
        #expect(published["exit_code"] as? Int == 0)
        #expect(published["config_sha256"] as? String == manifest.pipeline.configSha256)
        #expect((published["host"] as? String)?.isEmpty == false)
        #expect(published["rows_read"] as? Int == 20 && published["samples_written"] as? Int == 20)
        #expect(published["rows_fetched"] as? Int == 20 && (published["bytes_fetched"] as? Int ?? 0) > 0)
        #expect(published["deduplicated"] as? Int == 0)
        #expect(published["bytes_read"] as? Int == manifest.stats.sourceBytes && published["bytes_written"] as? Int == manifest.stats.bytesWritten)
        #expect(published["cursor_from"] is NSNull && published["cursor_to"] as? String == "20")
        #expect(published["version_published"] as? String == "v1" && published["error"] is NSNull)

        #expect(records[1]["outcome"] as? String == "nothing_new")
        #expect(records[1]["cursor_from"] as? String == "20" && records[1]["cursor_to"] as? String == "20")
        #expect(records[1]["version_published"] is NSNull && records[1]["parent"] as? String == "v1")

        #expect(records[2]["outcome"] as? String == "failed")
        #expect(records[2]["exit_code"] as? Int == 6 && records[2]["failure"] as? String == "locked")
        #expect(records[2]["run_id"] is NSNull)
        #expect((records[2]["error"] as? String)?.contains("another run holds this dataset's lock") == true)
    }

    @Test func aFailedConnectionIsRecordedWithoutItsPassword() throws {
        let ws = try Workspace("ledgerpw")
        let secret = "hunter2-\(UUID().uuidString.prefix(6))"
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(
            of: "source:\n", with: "source:\n  connection: \"host=127.0.0.1 port=1 user=etl password=\(secret) dbname=x connect_timeout=3\"\n"))
        let result = try ws.etl("run", "fb")
        #expect(result.status == 3, "\(result.output)")
        let text = try String(contentsOf: ws.datasets.appendingPathComponent("fb/runs.jsonl"), encoding: .utf8)
        #expect(!text.contains(secret))
        let record = try #require(try ledger(ws).first)
        #expect(record["outcome"] as? String == "failed" && record["exit_code"] as? Int == 3 && record["failure"] as? String == "unreachable")
        #expect((record["error"] as? String)?.contains("127.0.0.1") == true)
        let status = try ws.etl("status", "fb", "--json")
        #expect(status.status == 0, "\(status.output)")
        #expect(!status.output.contains(secret))
    }

    @Test func aLedgerThatCannotBeWrittenIsReportedNotFatal() throws {
        let ws = try Workspace("ledgerro")
        try seedFeedback(ws, count: 5)
        try ws.writePipeline("fb", basicPipeline)
        // A directory where the ledger file should be: the append fails, the run still publishes.
        try FileManager.default.createDirectory(at: ws.datasets.appendingPathComponent("fb/runs.jsonl"), withIntermediateDirectories: true)
        let result = try ws.etl("run", "fb")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stderr.contains("etl: warning: the run was not recorded in the run ledger of fb"), "\(result.stderr)")
        #expect(ws.versions("fb") == ["v1"])
    }

    /// `ledger:` copies every record into a PostgreSQL table of another database (created by this test), created if
    /// missing; a ledger database that is down is a warning, never the run's failure.
    @Test func theLedgerIsCopiedToAPostgreSQLTableAndAFailingOneOnlyWarns() throws {
        let ws = try Workspace("pgledger")
        let database = "etl_ledger_\(UUID().uuidString.prefix(8).lowercased())"
        try ws.db.execute("CREATE DATABASE \(database)")
        defer { try? ws.db.execute("DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
        try seedFeedback(ws, count: 20)
        try ws.writePipeline("fb", basicPipeline + "\nledger:\n  connection_env: ETL_TEST_LEDGER\n  table: ops.runs\n")
        let environment = ["ETL_TEST_LEDGER": "dbname=\(database)"]
        let ledgerDB = try PostgresConnection(conninfo: "dbname=\(database)")
        try ledgerDB.execute("CREATE SCHEMA ops")
        // The table as an older etl created it, without the columns added since: they are added before the insert.
        try ledgerDB.execute(PostgresLedgerTableOfOlderEtl.createSQL)
        #expect(try ws.etl("run", "fb", environment: environment).status == 0)
        #expect(try ws.etl("run", "fb", environment: environment).status == 0)

        let rows = try ledgerDB.query("SELECT run_id, outcome, rows_read::text, rows_fetched::text, version_published, cursor_to, exit_code::text, deduplicated::text FROM ops.runs ORDER BY started_at")
        let file = try ledger(ws)
        try #require(rows.rows.count == 2 && file.count == 2, "\(rows.rows.count) rows in the table")
        for (row, record) in zip(rows.rows, file) {
            let text = row.values.map(\.textForParameter)
            #expect(text[0] == record["run_id"] as? String)
            #expect(text[1] == record["outcome"] as? String)
            #expect(text[2] == (record["rows_read"] as? Int).map(String.init) && text[3] == (record["rows_fetched"] as? Int).map(String.init))
            #expect(text[4] == record["version_published"] as? String && text[5] == record["cursor_to"] as? String)
            #expect(text[6] == "0" && text[7] == "0")
        }
        #expect(rows.rows.first?.values[1] == .text("published") && rows.rows.last?.values[1] == .text("nothing_new"))
        let inSource = try ws.db.query("SELECT count(*) FROM pg_tables WHERE tablename = 'runs' AND schemaname = 'ops'")
        #expect(inSource.rows.first?.values.first == .int64(0), "nothing is written to the source database")

        // The ledger database is unreachable: the run still publishes and exits 0, with a warning.
        try seedFeedback(ws, from: 21, count: 5)
        let down = try ws.etl("run", "fb", environment: ["ETL_TEST_LEDGER": "host=127.0.0.1 port=1 connect_timeout=2 dbname=x"])
        #expect(down.status == 0, "\(down.output)")
        #expect(down.stderr.contains("etl: warning: the run was not recorded in the PostgreSQL ledger table ops.runs"), "\(down.stderr)")
        #expect(ws.versions("fb") == ["v1", "v2"])
        #expect(try ledger(ws).count == 3, "the file ledger still has it")

        // Without the variable the file is refused, at the line that names it.
        let unset = try ws.etl("run", "fb")
        #expect(unset.status == 2 && unset.stderr.contains("ledger.connection_env: environment variable 'ETL_TEST_LEDGER' is not set"), "\(unset.output)")
    }

    /// The whole `etl status` table. Normalizer: in timestamps (`YYYY-MM-DDTHH:MM:SSZ`) and durations (`12.3s`)
    /// every digit becomes 0, and the 8 hex digits of a run id become `xxxxxxxx`; each keeps its width, so the
    /// columns' alignment is still checked.
    static func normalized(_ text: String) -> String {
        var out = text
        for pattern in [#"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"#, #"\b\d+\.\ds\b"#] {
            let regex = try! NSRegularExpression(pattern: pattern)
            for match in regex.matches(in: out, range: NSRange(out.startIndex..., in: out)).reversed() {
                let range = Range(match.range, in: out)!
                out.replaceSubrange(range, with: out[range].map { $0.isNumber ? "0" : String($0) }.joined())
            }
        }
        let runId = try! NSRegularExpression(pattern: #"(?<=Z  )[0-9a-f]{8}(?=  )"#)
        return runId.stringByReplacingMatches(in: out, range: NSRange(out.startIndex..., in: out), withTemplate: "xxxxxxxx")
    }

    @Test func statusShowsTheRecentRunsNewestFirst() throws {
        let ws = try Workspace("status")
        try seedFeedback(ws, count: 20)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        #expect(try ws.etl("run", "fb").status == 0)
        try seedFeedback(ws, from: 21, count: 5)
        try ws.writePipeline("fb", basicPipeline + "\nexpect:\n  min_new_rows: 10\n")
        #expect(try ws.etl("run", "fb").status == 8)

        let status = try ws.etl("status", "fb")
        #expect(status.status == 0, "\(status.output)")
        #expect(Self.normalized(status.stdout) == """
            STARTED               RUN       PIPELINE  OUTCOME      EXIT  ROWS  SAMPLES  QUARANTINED  VERSION  CURSOR    DURATION  ERROR
            0000-00-00T00:00:00Z  xxxxxxxx  fb        failed       8     5     5        0            -        20        0.0s      a quality gate failed (pipelines/fb.yaml); nothing was published and the cursor…
            0000-00-00T00:00:00Z  xxxxxxxx  fb        nothing_new  0     0     0        0            -        20        0.0s
            0000-00-00T00:00:00Z  xxxxxxxx  fb        published    0     20    20       0            v1       start→20  0.0s

            """)

        let two = try ws.etl("status", "-n", "2", "--json")
        #expect(two.status == 0, "\(two.output)")
        let records = try JSONDecoder().decode([RunRecord].self, from: Data(two.stdout.utf8))
        #expect(records.map(\.outcome) == [.failed, .nothingNew])
        #expect(records[0].failure == "quality_gate" && records[0].exitCode == 8)
        #expect(records[0].error?.contains("expect.min_new_rows: 5 new rows read, at least 10 expected") == true)

        let none = try ws.etl("status", "nope")
        #expect(none.status == 7 && none.stderr.contains("no runs recorded for 'nope'"), "\(none.output)")
    }
}

/// `ops.runs` as etl created it before the `deduplicated` column.
enum PostgresLedgerTableOfOlderEtl {
    static let createSQL = """
        CREATE TABLE ops.runs (run_id text, pipeline text NOT NULL, dataset text NOT NULL, config_sha256 text NOT NULL,
            host text NOT NULL, pid integer NOT NULL, started_at timestamptz NOT NULL, ended_at timestamptz NOT NULL,
            duration_seconds double precision NOT NULL, outcome text NOT NULL, exit_code integer NOT NULL, failure text,
            rows_read bigint NOT NULL, rows_fetched bigint, bytes_fetched bigint, samples_written bigint NOT NULL,
            quarantined bigint NOT NULL, quarantined_by_reason jsonb NOT NULL, bytes_read bigint NOT NULL,
            bytes_written bigint NOT NULL, cursor_from text, cursor_to text, parent text, version_published text, error text)
        """
}
