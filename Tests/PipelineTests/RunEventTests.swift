import Dataset
import Foundation
import Pipeline
import Postgres
import Testing

/// The runner reports through typed events, in order, and ends in a typed outcome; failures carry a category.
/// Runs in-process against the PostgreSQL that scripts/test starts.
@Suite struct RunEventTests {
    final class Recorder: RunListener, @unchecked Sendable {
        private let lock = NSLock()
        private var recorded: [RunEvent] = []
        func handle(_ event: RunEvent) { lock.withLock { recorded.append(event) } }
        var events: [RunEvent] { lock.withLock { recorded } }
        var names: [String] {
            events.map {
                switch $0 {
                case .started: "started"
                case .planned: "planned"
                case .progress: "progress"
                case .quarantined: "quarantined"
                case .shardSealed: "shardSealed"
                case .notice: "notice"
                case .finished(.published): "published"
                case .finished(.nothingNew): "nothingNew"
                case .finished(.failed): "failed"
                }
            }
        }
    }

    struct Fixture {
        let schema = "etl_events_\(UUID().uuidString.prefix(8).lowercased())"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("etl-events-\(UUID().uuidString.prefix(8))")
        let db: PostgresConnection

        init(rows: Int) throws {
            db = try PostgresConnection(conninfo: "")
            try db.execute("CREATE SCHEMA \(schema)")
            try db.execute("CREATE TABLE \(schema).fb (id bigint PRIMARY KEY, label text)")
            try db.execute("INSERT INTO \(schema).fb SELECT g, CASE WHEN g % 5 = 0 THEN NULL ELSE 'ok' END FROM generate_series(1, \(rows)) g")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }

        func config(connection: String? = nil) throws -> PipelineConfig {
            let yaml = """
                name: events
                output_root: \(directory.path)/datasets
                source:
                \(connection.map { "  connection: \"\($0)\"\n" } ?? "")  query: SELECT id, label FROM \(schema).fb
                  cursor_column: id
                  key_column: id
                columns:
                  - name: label
                shards:
                  size_limit: 2KiB
                """
            let path = directory.appendingPathComponent("events.yaml").path
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            return try PipelineConfig.load(path: path)
        }

        func drop() {
            try? db.execute("DROP SCHEMA \(schema) CASCADE")
            try? FileManager.default.removeItem(at: directory)
        }
    }

    @Test func aPublishingRunReportsEveryStageInOrder() throws {
        let fixture = try Fixture(rows: 200)
        defer { fixture.drop() }
        let recorder = Recorder()
        let outcome = try PipelineRunner.run(try fixture.config(), options: RunOptions(listeners: [recorder], progressInterval: 0))
        guard case .published(let manifest) = outcome else { Issue.record("expected a published version"); return }
        let names = recorder.names
        #expect(names.first == "started" && names.dropFirst().first == "planned" && names.last == "published", "\(names)")
        #expect(names.filter { $0 == "quarantined" }.count == 40, "every fifth label is NULL")
        #expect(names.filter { $0 == "shardSealed" }.count == manifest.splits.values.reduce(0) { $0 + $1.shards.count })
        #expect(names.contains("progress"))
        for event in recorder.events {
            if case .planned(let estimate) = event { #expect(estimate != nil && estimate! > 0, "EXPLAIN gives an estimate") }
            if case .started(let start) = event { #expect(start.parent == nil && start.cursorFrom == nil && start.dataset == "events") }
            if case .finished(.published(let published, let progress)) = event {
                #expect(published == manifest)
                #expect(progress.rowsRead == 200 && progress.samplesWritten == 160 && progress.quarantined == 40)
            }
        }
        // A second run finds nothing new: a typed outcome, not an error.
        let again = Recorder()
        guard case .nothingNew(let latest) = try PipelineRunner.run(try fixture.config(), options: RunOptions(listeners: [again])) else {
            Issue.record("expected nothing new"); return
        }
        #expect(latest == "v1")
        #expect(again.names.last == "nothingNew")
    }

    @Test func failuresCarryTheirCategoryThroughOneProtocol() throws {
        let fixture = try Fixture(rows: 3)
        defer { fixture.drop() }
        let cases: [(String?, FailureCategory)] = [
            ("host=localhost port", .config),
            ("host=127.0.0.1 port=1 connect_timeout=2", .unreachable),
        ]
        for (connection, category) in cases {
            let recorder = Recorder()
            #expect { try PipelineRunner.run(try fixture.config(connection: connection), options: RunOptions(listeners: [recorder])) } throws: {
                RunFailureReport($0).category == category
            }
            guard case .finished(.failed(let report, _)) = recorder.events.last else { Issue.record("no failed event"); continue }
            #expect(report.category == category, "\(report.message)")
            #expect(report.isRetryable == (category == .unreachable))
        }
        try fixture.db.execute("ALTER TABLE \(fixture.schema).fb RENAME COLUMN label TO label2")
        // The query itself no longer runs: that is the query's failure (exit 4), with the server's words.
        #expect { try PipelineRunner.run(try fixture.config()) } throws: {
            RunFailureReport($0).category == .query && RunFailureReport($0).message.contains("42703")
        }
        try fixture.db.execute("ALTER TABLE \(fixture.schema).fb RENAME COLUMN label2 TO label")
        try fixture.db.execute("CREATE FUNCTION \(fixture.schema).boom(bigint) RETURNS text AS 'SELECT (1/($1-2))::text' LANGUAGE sql")
        try fixture.db.execute("DROP TABLE \(fixture.schema).fb")
        try fixture.db.execute("CREATE VIEW \(fixture.schema).fb AS SELECT g::bigint AS id, \(fixture.schema).boom(g) AS label FROM generate_series(1, 3) g")
        #expect { try PipelineRunner.run(try fixture.config()) } throws: { RunFailureReport($0).category == .query }
        #expect(RunFailureReport(DatasetError(.conflict, path: "x", "lost the race")).category == .locked)
        #expect(RunFailureReport(DatasetError(.writeFailed, path: "x", "full", errno: 28)).isRetryable)
        struct Unexpected: Error {}
        #expect(RunFailureReport(Unexpected()).category == .internal)
    }
}
