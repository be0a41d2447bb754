import Foundation
import MDS
import Postgres
import Testing

/// Incremental runs are commit-order safe: a row whose cursor value was taken before a run read past it, but whose
/// transaction committed after, is published by the next run — once.
@Suite struct ExactlyOnceTests {
    static let pipeline = """
        name: fb
        source:
          query: SELECT id, ts, note FROM $S.events
          cursor_column: CURSOR
          key_column: id
        columns:
          - name: note
        shards:
          size_limit: 4KiB
        """

    static func setUp(_ ws: Workspace, cursor: String) throws {
        try ws.sql("CREATE TABLE $S.events (id bigserial PRIMARY KEY, ts timestamptz NOT NULL DEFAULT now(), note text)")
        try ws.sql("CREATE INDEX ON $S.events (ts)")
        try ws.writePipeline("fb", pipeline.replacingOccurrences(of: "CURSOR", with: cursor))
    }

    /// Every __key__ of every split of the newest version, duplicates kept.
    static func publishedKeys(_ ws: Workspace) throws -> [String] {
        guard let latest = ws.versions("fb").last else { return [] }
        var keys: [String] = []
        for split in try ws.manifest("fb", latest).splits.keys {
            try MDSReader(directory: ws.versionDirectory("fb", latest).appendingPathComponent(split)).forEachSample { sample in
                if case .string(let key)? = sample["__key__"] { keys.append(key) }
            }
        }
        return keys
    }

    static func tableKeys(_ ws: Workspace) throws -> [String] {
        try ws.db.query("SELECT id::text FROM \(ws.schema).events ORDER BY id").rows.compactMap {
            if case .text(let text) = $0.values[0] { return text }
            return nil
        }
    }

    @Test(arguments: ["id", "ts"])
    func aRowCommittedAfterARunReadPastItIsPublishedOnceByTheNext(cursor: String) throws {
        let ws = try Workspace("late")
        try Self.setUp(ws, cursor: cursor)
        try ws.sql("INSERT INTO $S.events (note) VALUES ('first')")
        #expect(try ws.etl("run", "fb").status == 0)

        // A takes the lower id and the earlier timestamp, then waits; B commits after it; a run goes between.
        let a = try PostgresConnection(conninfo: "")
        try a.execute("BEGIN")
        try a.execute("INSERT INTO \(ws.schema).events (note) VALUES ('late A')")
        usleep(20_000)
        try ws.sql("INSERT INTO $S.events (note) VALUES ('B')")
        let between = try ws.etl("run", "fb")
        #expect(between.status == 0, "\(between.output)")
        #expect(try ws.manifest("fb", "v2").counts.newSamples == 1, "B only: A is not committed")
        try a.execute("COMMIT")

        let after = try ws.etl("run", "fb")
        #expect(after.status == 0, "\(after.output)")
        #expect(ws.versions("fb") == ["v1", "v2", "v3"])
        let v3 = try ws.manifest("fb", "v3")
        #expect(v3.counts.newSamples == 1, "A, found below v2's cursor")
        #expect(v3.cursor.from == (try ws.manifest("fb", "v2")).cursor.to && v3.cursor.to == v3.cursor.from, "the cursor does not move back")
        let keys = try Self.publishedKeys(ws)
        #expect(keys.sorted() == (try Self.tableKeys(ws)).sorted(), "every committed row, once")
        #expect(Set(keys).count == keys.count)

        // Nothing left: the next run publishes nothing and re-publishes nothing.
        let idle = try ws.etl("run", "fb")
        #expect(idle.status == 0 && idle.stdout.contains("nothing new"), "\(idle.output)")
    }

    /// The re-read window is looked at keys only: the rows a version holds are not fetched again with their payload.
    @Test(arguments: ["id", "ts"])
    func theReReadWindowFetchesThePayloadOfUnpublishedRowsOnly(cursor: String) throws {
        let ws = try Workspace("window")
        try Self.setUp(ws, cursor: cursor)
        try ws.sql("INSERT INTO $S.events (note) VALUES ('first')")
        #expect(try ws.etl("run", "fb").status == 0)
        // A late transaction holds the window open below 100 rows that the next run publishes.
        let late = try PostgresConnection(conninfo: "")
        try late.execute("BEGIN")
        try late.execute("INSERT INTO \(ws.schema).events (note) VALUES (repeat('A', 4000))")
        usleep(20_000)
        try ws.sql("INSERT INTO $S.events (note) SELECT repeat('b', 4000) FROM generate_series(1, 100)")
        #expect(try ws.etl("run", "fb").status == 0)
        try late.execute("COMMIT")

        let result = try ws.etl("run", "fb")
        #expect(result.status == 0, "\(result.output)")
        let v3 = try ws.manifest("fb", "v3")
        #expect(v3.counts.newSamples == 1, "the late row, found below v2's cursor")
        let window = try ws.db.query("SELECT count(*), sum(octet_length(note))::int8 FROM \(ws.schema).events WHERE note <> 'first'")
        func number(_ value: PostgresValue) -> Int64 { if case .int64(let n) = value { n } else { 0 } }
        let windowRows = number(window.rows[0].values[0]), windowBytes = number(window.rows[0].values[1])
        #expect(windowRows == 101)
        let record = try #require(try OpsKillTests.lastLedgerRecord(ws))
        let fetched = try #require(record["rows_fetched"] as? Int), bytes = try #require(record["bytes_fetched"] as? Int)
        #expect(fetched == 1, "only the late row is fetched in full, not the \(windowRows - 1) rows v2 holds")
        #expect(bytes < 4000 + Int(windowRows) * 64, "\(bytes) bytes fetched")
        print("re-read window (cursor \(cursor)): \(windowRows) rows, \(windowBytes) payload bytes; fetched \(fetched) rows, \(bytes) bytes")
        let keys = try Self.publishedKeys(ws)
        #expect(keys.sorted() == (try Self.tableKeys(ws)).sorted() && Set(keys).count == keys.count, "every committed row, once")
    }

    @Test(arguments: ["id", "ts"])
    func concurrentWritersWithRandomCommitDelaysLoseNothingAndDuplicateNothing(cursor: String) throws {
        let ws = try Workspace("stress")
        try Self.setUp(ws, cursor: cursor)
        let schema = ws.schema
        let stop = Flag()
        let failures = Flag()
        let writers = (0..<4).map { index in
            let thread = Thread {
                do {
                    let db = try PostgresConnection(conninfo: "")
                    var random = SystemRandomNumberGenerator()
                    while !stop.isSet {
                        try db.execute("BEGIN")
                        for _ in 0..<Int.random(in: 1...3, using: &random) {
                            try db.execute("INSERT INTO \(schema).events (note) VALUES ('w\(index)')")
                        }
                        usleep(UInt32.random(in: 0...150_000, using: &random))  // commit late, out of order
                        try db.execute("COMMIT")
                    }
                } catch { failures.set() }
            }
            thread.start()
            return thread
        }
        let deadline = Date().addingTimeInterval(8)
        var runs = 0
        while Date() < deadline {
            let result = try ws.etl("run", "fb")
            #expect(result.status == 0, "\(result.output)")
            runs += 1
        }
        stop.set()
        while writers.contains(where: { !$0.isFinished }) { usleep(10_000) }
        #expect(!failures.isSet, "a writer failed")
        #expect(try ws.etl("run", "fb").status == 0)
        #expect(runs >= 3, "runs went on while the writers wrote")
        let keys = try Self.publishedKeys(ws)
        let table = try Self.tableKeys(ws)
        #expect(table.count > 20)
        let duplicates = keys.count - Set(keys).count
        let missing = Set(table).subtracting(keys).sorted()
        #expect(duplicates == 0, "\(duplicates) keys published twice")
        #expect(missing.isEmpty, "\(missing.count) rows never published, e.g. \(missing.prefix(5))")
        #expect(Set(keys).isSubset(of: Set(table)))
    }

    @Test func aQueryThatWritesFailsInTheReadOnlyTransaction() throws {
        let ws = try Workspace("readonly")
        try Self.setUp(ws, cursor: "id")
        try ws.sql("INSERT INTO $S.events (note) VALUES ('x')")
        try ws.sql("CREATE TABLE $S.audit (at timestamptz)")
        try ws.sql("CREATE FUNCTION $S.touch() RETURNS text AS 'INSERT INTO \(ws.schema).audit VALUES (now()); SELECT ''y''' LANGUAGE sql VOLATILE")
        try ws.writePipeline("fb", Self.pipeline.replacingOccurrences(of: "CURSOR", with: "id")
            .replacingOccurrences(of: "SELECT id, ts, note FROM", with: "SELECT id, ts, $S.touch() AS note FROM"))
        let result = try ws.etl("run", "fb")
        #expect(result.status == 4, "\(result.output)")
        #expect(result.stderr.contains("read-only transaction"), "\(result.stderr)")
        let audit = try ws.db.query("SELECT count(*) FROM \(ws.schema).audit")
        #expect(audit.rows.first?.values.first == .int64(0), "nothing was written to the source")
        #expect(ws.versions("fb").isEmpty)
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

@Suite struct ScanWarningTests {
    @Test func validateWarnsWhenTheCursorCannotUseAnIndexAndNotWhenItCan() throws {
        let ws = try Workspace("seqscan")
        try ws.sql("CREATE TABLE $S.events (id bigserial PRIMARY KEY, ts timestamptz NOT NULL DEFAULT now(), note text)")
        try ws.sql("INSERT INTO $S.events (note) SELECT 'n' || g FROM generate_series(1, 5000) g")
        try ws.sql("ANALYZE $S.events")
        try ws.writePipeline("byts", ExactlyOnceTests.pipeline.replacingOccurrences(of: "CURSOR", with: "ts").replacingOccurrences(of: "name: fb", with: "name: byts"))
        try ws.writePipeline("byid", ExactlyOnceTests.pipeline.replacingOccurrences(of: "CURSOR", with: "id").replacingOccurrences(of: "name: fb", with: "name: byid"))
        let unindexed = try ws.etl("validate", "byts")
        #expect(unindexed.status == 0, "a warning, not an error: \(unindexed.output)")
        #expect(unindexed.stderr.contains("warning: the cursor predicate on 'ts' cannot use an index on \(ws.schema).events"), "\(unindexed.stderr)")
        let indexed = try ws.etl("validate", "byid")
        #expect(indexed.status == 0 && !indexed.stderr.contains("warning"), "\(indexed.output)")
        try ws.sql("CREATE INDEX ON $S.events (ts)")
        try ws.sql("ANALYZE $S.events")
        let fixed = try ws.etl("validate", "byts")
        #expect(fixed.status == 0 && !fixed.stderr.contains("warning"), "\(fixed.output)")
    }
}
