import Foundation
import Testing
@testable import Postgres

/// Large bytea values sent in chunks and assembled here (`ByteaChunking`): the same rows as sending them whole.
@Suite(needsDatabase)
struct ByteaChunkingTests {
    private static let chunk = 1000

    /// Every length around the chunk size, NULLs, two bytea columns of different lengths in one row (the row takes as
    /// many parts as the longer needs), other columns of all kinds, duplicate column names: identical to the rows
    /// of a COPY without chunking and of single-row mode, in the same order, the same batch sizes by rows.
    @Test func rowsEqualThoseSentWhole() throws {
        let connection = try TestDatabase.connect()
        let sql = """
            SELECT g AS id, CASE WHEN g % 11 = 0 THEN NULL ELSE substring(decode(repeat(md5(g::text), 300), 'hex') FROM 1 FOR l) END AS a,
                   md5(g::text) AS label, substring(decode(repeat(md5((g * 7)::text), 300), 'hex') FROM 1 FOR (l * 3) % 4500) AS b,
                   g AS id, '\\x00ff'::bytea AS small
            FROM generate_series(1, 60) g, LATERAL (SELECT (ARRAY[0, 1, 999, 1000, 1001, 1999, 2000, 2001, 2999, 3000, 4321])[1 + g % 11] AS l) AS lengths
            ORDER BY g
            """
        let chunked = try rows(connection, sql, chunking: ByteaChunking(chunkSize: Self.chunk))
        let whole = try rows(connection, sql, chunking: nil)
        var single: [PostgresRow] = []
        try connection.stream(sql) { single.append($0) }
        #expect(chunked.count == 60 && whole.count == 60)
        #expect(chunked.map(\.columns) == whole.map(\.columns))
        #expect(chunked.map(\.values) == whole.map(\.values))
        #expect(chunked.map(\.values) == single.map(\.values))
        // A value of more than one chunk is one buffer of its own; a smaller one is still a slice of its message.
        let long = try #require(chunked.first { if case .bytea(let a) = $0.values[1] { a.count == 4321 } else { false } })
        guard case .bytea(let a) = long.values[1], case .bytea(let small) = long.values[5] else { Issue.record("no bytea"); return }
        #expect(!a.sharesStorage(with: small))
    }

    /// Values stored out of line in a table, compressed (`EXTENDED`) and not (`EXTERNAL`), several chunks each: the
    /// server detoasts each once and slices it; the assembled bytes are the stored bytes.
    @Test func toastedValuesInATable() throws {
        let connection = try TestDatabase.connect()
        try connection.execute("CREATE TEMP TABLE chunked_media (id int4 PRIMARY KEY, packed bytea, plain bytea)")
        try connection.execute("ALTER TABLE chunked_media ALTER COLUMN plain SET STORAGE EXTERNAL")
        try connection.execute("""
            INSERT INTO chunked_media
            SELECT g, decode(repeat('0123456789abcdef', 20000 * g), 'hex'),
                   (SELECT string_agg(decode(md5((g * 1000 + i)::text), 'hex'), ''::bytea) FROM generate_series(1, 5000 * g) i)
            FROM generate_series(1, 4) g;
            """)
        let sql = "SELECT id, packed, plain, octet_length(packed) AS packed_length FROM chunked_media ORDER BY id"
        let chunked = try rows(connection, sql, chunking: ByteaChunking(chunkSize: 64 << 10))
        let whole = try rows(connection, sql, chunking: nil)
        #expect(chunked.count == 4)
        #expect(chunked.map(\.values) == whole.map(\.values))
        for row in chunked {
            guard case .bytea(let packed) = row.values[1], case .bytea(let plain) = row.values[2] else {
                Issue.record("row \(row.values[0]) lacks its values")
                continue
            }
            #expect(packed.count > 64 << 10 && plain.count > 64 << 10)
            #expect(row.values[3] == .int32(Int32(packed.count)))
        }
    }

    /// An error in the user's query after a row in parts: the error comes through, nothing half-assembled is handed
    /// over, the connection stays usable.
    @Test func aServerErrorMidRowKeepsItsSQLSTATE() throws {
        let connection = try TestDatabase.connect()
        var delivered: [PostgresRow] = []
        #expect {
            try connection.streamBatches(
                "SELECT g, decode(repeat('ab', 5000), 'hex') AS data, 1 / (3 - g) AS x FROM generate_series(1, 5) g",
                limits: RowBatchLimits(maxRows: 1), chunking: ByteaChunking(chunkSize: 1000)
            ) { delivered += $0 }
        } throws: { error in (error as? PostgresError)?.sqlstate == "22012" }
        #expect(delivered.count == 2)
        #expect(try connection.query("SELECT 2::int4 AS two").rows[0]["two"] == .int32(2))
    }

    @Test func theWrappedStatementRefersToTheUsersStatementOnceAndByPosition() {
        let sql = ByteaChunking(chunkSize: 100).wrappedStatement("SELECT a, a, b FROM t", columns: [.int64, .bytea, .bytea])
        #expect(sql.components(separatedBy: "SELECT a, a, b FROM t").count == 2)
        #expect(sql.hasPrefix("WITH etl_user AS NOT MATERIALIZED (SELECT * FROM (\nSELECT a, a, b FROM t\n)"), "first, for pg_stat_activity")
        #expect(sql.contains("FROM etl_user AS etl_q(c0, c1, c2) OFFSET 0"))
        #expect(sql.contains("GREATEST((octet_length(etl_d.c1) - 1) / 100, (octet_length(etl_d.c2) - 1) / 100, 0)"))
    }

    /// The wrapped statement is planned and run as the statement alone: JIT off where the statement alone is under
    /// `jit_above_cost`, no parallel plan where the statement alone has none (the index scan stays an index scan), and
    /// the session's settings as they were afterwards.
    @Test func theWrappedStatementKeepsThePlanOfTheStatementAlone() throws {
        let connection = try TestDatabase.connect()
        let table = "chunk_plan_\(UInt32.random(in: 0...UInt32.max))"
        try connection.execute("CREATE TABLE \(table) (id int8 PRIMARY KEY, note text, h bytea)")
        defer { try? connection.execute("DROP TABLE IF EXISTS \(table)") }
        try connection.execute("INSERT INTO \(table) SELECT g, md5(g::text), decode(md5(g::text), 'hex') FROM generate_series(1, 300000) g")
        try connection.execute("ANALYZE \(table)")
        try connection.execute("SET jit = on")
        try connection.execute("SET max_parallel_workers_per_gather = 2")
        let select = "SELECT id, note, h FROM \(table) ORDER BY id"
        let alone = try explain(connection, select)
        #expect(alone.contains("Index Scan") && !alone.contains("Gather"), "\(alone)")

        let (overrides, previous) = try connection.chunkedPlanOverrides(select)
        #expect(overrides.settings.map(\.name) == ["max_parallel_workers_per_gather"] || overrides.settings.map(\.name) == ["jit", "max_parallel_workers_per_gather"])
        #expect(previous["max_parallel_workers_per_gather"] == "2")
        for setting in overrides.settings { try connection.setConfig(setting.name, setting.value) }
        let wrapped = try explain(connection, ByteaChunking().wrappedStatement(select, columns: [.int64, .text, .bytea]))
        #expect(wrapped.contains("Index Scan") && !wrapped.contains("Gather") && !wrapped.contains("Sort"), "\(wrapped)")
        try connection.execute("SET max_parallel_workers_per_gather = 2")
        try connection.execute("SET jit = on")

        // Streaming puts the settings back.
        var rows = 0
        try connection.streamBatches("SELECT id, h FROM \(table) WHERE id <= 1000 ORDER BY id") { rows += $0.count }
        #expect(rows == 1000)
        let after = try connection.query("SELECT current_setting('jit') AS jit, current_setting('max_parallel_workers_per_gather') AS workers").rows[0]
        #expect(after["jit"] == .text("on") && after["workers"] == .text("2"))
    }

    @Test func overridesFollowTheSettingsAndThePlanAlone() {
        let plain = #"[{"Plan": {"Node Type": "Index Scan", "Startup Cost": 0.42, "Total Cost": 45999.43}}]"#
        let parallel = #"[{"Plan": {"Node Type": "Gather Merge", "Total Cost": 218277.59, "Plans": [{"Node Type": "Sort"}]}}]"#
        func names(_ jit: String?, _ above: Double?, _ workers: String?, _ plan: String) -> [String] {
            ChunkedPlanOverrides(jit: jit, jitAboveCost: above, parallelWorkersPerGather: workers, explainJSON: plan).settings.map(\.name)
        }
        #expect(names("on", 100000, "2", plain) == ["jit", "max_parallel_workers_per_gather"])
        #expect(names("on", 1000, "2", plain) == ["max_parallel_workers_per_gather"], "over the threshold alone: JIT as configured")
        #expect(names("off", 100000, "2", plain) == ["max_parallel_workers_per_gather"])
        #expect(names("on", 100000, "0", plain) == ["jit"])
        #expect(names("on", 1000, "2", parallel) == [], "parallel alone: parallel wrapped")
        #expect(names(nil, nil, nil, plain) == [], "a server without these settings")
        #expect(ChunkedPlanOverrides.totalCost(explainJSON: parallel) == 218277.59)
        #expect(ChunkedPlanOverrides.totalCost(explainJSON: "[]") == nil)
    }

    private func explain(_ connection: PostgresConnection, _ sql: String) throws -> String {
        try connection.query("EXPLAIN " + sql).rows.compactMap { row -> String? in
            if case .text(let line) = row.values[0] { line } else { nil }
        }.joined(separator: "\n")
    }

    /// With a budget, a large value is assembled only when the ones handed over before it were freed (or fit beside it):
    /// the memory held never exceeds the budget or the largest value, whatever the number of large values.
    @Test func largeValuesAreReservedPerRowAndGivenBackWhenFreed() throws {
        let connection = try TestDatabase.connect()
        let sql = "SELECT g, decode(repeat(md5(g::text), 160), 'hex') AS data FROM generate_series(1, 6) g"  // 2,560 bytes each
        let reservations = CountedReservations()
        var seen = 0
        try connection.streamBatches(sql, limits: RowBatchLimits(maxRows: 1), chunking: ByteaChunking(chunkSize: 1000), budget: reservations) { batch in
            #expect(reservations.held == 2560, "this row's value is held until it is freed")
            seen += batch.count
        }
        #expect(seen == 6 && reservations.held == 0 && reservations.requests == Array(repeating: 2560, count: 6))

        // Two large values in one row are reserved together, in one request (one by one, the second could wait for
        // the first, which only this row can give back).
        let pairs = "SELECT g, decode(repeat(md5(g::text), 160), 'hex') AS a, decode(repeat(md5(g::text), 200), 'hex') AS b FROM generate_series(1, 3) g"
        let paired = CountedReservations()
        try connection.streamBatches(pairs, limits: RowBatchLimits(maxRows: 1), chunking: ByteaChunking(chunkSize: 1000), budget: paired) { _ in
            #expect(paired.held == 2560 + 3200)
        }
        #expect(paired.held == 0 && paired.requests == Array(repeating: 2560 + 3200, count: 3))

        // Reservations that say stop (the run is ending): the stream fails, nothing stays reserved, the connection
        // stays usable.
        let refusing = CountedReservations(refuseAfter: 1)
        var kept: [PostgresRow] = []
        #expect(throws: PostgresError.self) {
            try connection.streamBatches(sql, limits: RowBatchLimits(maxRows: 1), chunking: ByteaChunking(chunkSize: 1000), budget: refusing) { kept += $0 }
        }
        #expect(kept.count == 1)
        kept.removeAll()
        #expect(refusing.held == 0)
        #expect(try connection.query("SELECT 3::int4 AS three").rows[0]["three"] == .int32(3))
    }

    private func rows(_ connection: PostgresConnection, _ sql: String, chunking: ByteaChunking?) throws -> [PostgresRow] {
        var all: [PostgresRow] = []
        try connection.streamBatches(sql, limits: RowBatchLimits(maxRows: 7), chunking: chunking) { all += $0 }
        return all
    }
}

/// The assembler on its own: every inconsistency in the parts is an error, never a different value.
@Suite struct ChunkedRowAssemblerTests {
    private let columns = [PostgresColumn(name: "id", type: PostgresType(oid: 20, name: "int8")),
                           PostgresColumn(name: "data", type: PostgresType(oid: 17, name: "bytea"))]

    private func assembler() -> ChunkedRowAssembler {
        ChunkedRowAssembler(columns: columns, formats: [.int64, .bytea], chunkSize: 4, statement: "s")
    }

    private func part(_ number: Int32, id: Int64?, chunk: [UInt8]?, length: Int32?) -> [PostgresValue] {
        [id.map { .int64($0) } ?? .null, chunk.map { .bytea(PostgresBytes($0)) } ?? .null, .int32(number),
         length.map { .int32($0) } ?? .null]
    }

    @Test func assemblesPartsInOrder() throws {
        var assembler = assembler()
        #expect(try assembler.add(part(0, id: 1, chunk: [1, 2, 3, 4], length: 10)) == nil)
        #expect(try assembler.add(part(1, id: nil, chunk: [5, 6, 7, 8], length: nil)) == nil)
        let row = try #require(try assembler.add(part(2, id: nil, chunk: [9, 10], length: nil)))
        #expect(row.values == [.int64(1), .bytea(PostgresBytes(1...10))])
        let small = try #require(try assembler.add(part(0, id: 2, chunk: [7], length: 1)))
        #expect(small.values == [.int64(2), .bytea([7])])
        let null = try #require(try assembler.add(part(0, id: 3, chunk: nil, length: nil)))
        #expect(null.values == [.int64(3), .null])
        #expect(!assembler.isInsideRow)
    }

    @Test func refusesPartsOutOfOrderOrOfTheWrongSize() {
        var skipped = assembler()
        #expect(throws: PostgresError.self) {
            _ = try skipped.add(part(0, id: 1, chunk: [1, 2, 3, 4], length: 10))
            _ = try skipped.add(part(2, id: nil, chunk: [9, 10], length: nil))
        }
        skipped.discard()
        var short = assembler()
        #expect(throws: PostgresError.self) {
            _ = try short.add(part(0, id: 1, chunk: [1, 2, 3, 4], length: 10))
            _ = try short.add(part(1, id: nil, chunk: [5, 6], length: nil))
        }
        var cut = assembler()
        #expect(throws: PostgresError.self) {
            _ = try cut.add(part(0, id: 1, chunk: [1, 2, 3, 4], length: 10))
            _ = try cut.add(part(0, id: 2, chunk: [1], length: 1))
        }
        var lying = assembler()
        #expect(throws: PostgresError.self) { _ = try lying.add(part(0, id: 1, chunk: [1, 2], length: 3)) }
        var repeated = assembler()
        #expect(throws: PostgresError.self) {
            _ = try repeated.add(part(0, id: 1, chunk: [1, 2, 3, 4], length: 6))
            _ = try repeated.add(part(1, id: 1, chunk: [5, 6], length: nil))
        }
        var open = assembler()
        _ = try? open.add(part(0, id: 1, chunk: [1, 2, 3, 4], length: 6))
        #expect(open.isInsideRow)
        open.discard()
        #expect(!open.isInsideRow)
    }
}

/// Reservations that never wait: they count what is held and what was asked for, and refuse after `refuseAfter`
/// requests (the policy that waits is the pipeline's `LargeValueBudget`, tested there).
final class CountedReservations: LargeValueReservations, @unchecked Sendable {
    private let lock = NSLock()
    private let refuseAfter: Int?
    private var heldBytes = 0
    private var asked: [Int] = []

    init(refuseAfter: Int? = nil) { self.refuseAfter = refuseAfter }

    var held: Int { lock.withLock { heldBytes } }
    var requests: [Int] { lock.withLock { asked } }

    func reserve(_ bytes: Int) -> Bool {
        lock.withLock {
            if let refuseAfter, asked.count >= refuseAfter { return false }
            asked.append(bytes)
            heldBytes += bytes
            return true
        }
    }

    func release(_ bytes: Int) { lock.withLock { heldBytes -= bytes } }
}
