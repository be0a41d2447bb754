import Foundation
import Testing
@testable import Postgres

@Suite struct CopyRowDecoderTests {
    private let columns = [PostgresColumn(name: "id", type: PostgresType(oid: 20, name: "int8")),
                           PostgresColumn(name: "label", type: PostgresType(oid: 25, name: "text"))]

    private func message(header: Bool, fields: [[UInt8]?]) -> [UInt8] {
        var bytes: [UInt8] = header ? CopyRowDecoder.signature + [0, 0, 0, 0, 0, 0, 0, 0] : []
        bytes += withUnsafeBytes(of: Int16(fields.count).bigEndian, Array.init)
        for field in fields {
            guard let field else { bytes += [0xFF, 0xFF, 0xFF, 0xFF]; continue }
            bytes += withUnsafeBytes(of: Int32(field.count).bigEndian, Array.init) + field
        }
        return bytes
    }

    @Test func decodesHeaderRowsNullsAndTheTrailer() throws {
        var decoder = CopyRowDecoder(columns: columns, formats: [.int64, .text], statement: "s")
        let first = message(header: true, fields: [withUnsafeBytes(of: Int64(7).bigEndian, Array.init), Array("né".utf8)])
        let row = try first.withUnsafeBytes { bytes throws(PostgresError) in try decoder.decode(bytes) }
        #expect(row?.values == [.int64(7), .text("né")])
        let second = message(header: false, fields: [withUnsafeBytes(of: Int64(-1).bigEndian, Array.init), nil])
        #expect(try second.withUnsafeBytes { bytes throws(PostgresError) in try decoder.decode(bytes) }?.values == [.int64(-1), .null])
        let trailer: [UInt8] = [0xFF, 0xFF]
        #expect(try trailer.withUnsafeBytes { bytes throws(PostgresError) in try decoder.decode(bytes) } == nil)
        #expect(decoder.sawTrailer)
    }

    @Test func refusesWhatIsNotOneRowPerMessage() {
        var decoder = CopyRowDecoder(columns: columns, formats: [.int64, .text], statement: "s")
        let wrongCount = message(header: true, fields: [withUnsafeBytes(of: Int64(7).bigEndian, Array.init)])
        #expect(throws: PostgresError.self) { try wrongCount.withUnsafeBytes { bytes throws(PostgresError) in try decoder.decode(bytes) } }
        var fresh = CopyRowDecoder(columns: columns, formats: [.int64, .text], statement: "s")
        let noSignature = message(header: false, fields: [nil, nil])
        #expect(throws: PostgresError.self) { try noSignature.withUnsafeBytes { bytes throws(PostgresError) in try fresh.decode(bytes) } }
        var trailing = CopyRowDecoder(columns: columns, formats: [.int64, .text], statement: "s")
        let extra = message(header: true, fields: [nil, nil]) + [0]
        #expect(throws: PostgresError.self) { try extra.withUnsafeBytes { bytes throws(PostgresError) in try trailing.decode(bytes) } }
    }

    @Test func batchLimitsCloseOnEitherBound() {
        let limits = RowBatchLimits(maxRows: 3, maxBytes: 100)
        #expect(!limits.isFull(rows: 2, bytes: 99))
        #expect(limits.isFull(rows: 3, bytes: 1))
        #expect(limits.isFull(rows: 1, bytes: 100))
        #expect(RowBatchLimits(maxRows: 0, maxBytes: 0) == RowBatchLimits(maxRows: 1, maxBytes: 1))
    }
}

@Suite(needsDatabase)
struct CopyStreamTests {
    /// Every supported type, NULLs included, comes out of the COPY path exactly as out of single-row mode.
    @Test func rowsEqualThoseOfSingleRowMode() throws {
        let connection = try TestDatabase.connect()
        let sql = """
            SELECT g::int8 AS id, (g % 3 = 0) AS flag, g::int2 AS small, g::int4 AS mid, (g / 7.0)::float4 AS f4,
                   (g / 3.0)::float8 AS f8, (g / 7.0)::numeric(12, 4) AS num, CASE WHEN g % 5 = 0 THEN NULL ELSE md5(g::text) END AS label,
                   decode(md5(g::text), 'hex') AS raw, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' AS at,
                   date '2000-02-28' + g AS day, jsonb_build_object('g', g) AS doc, md5(g::text)::uuid AS u,
                   ARRAY['a', NULL, g::text] AS tags, ARRAY[g, -g]::int4[] AS ints,
                   CASE WHEN g = 3 THEN timestamptz 'infinity' END AS inf
            FROM generate_series(1, 3000) g ORDER BY g
            """
        var single: [PostgresRow] = []
        try connection.stream(sql) { single.append($0) }
        var batches: [[PostgresRow]] = []
        try connection.streamBatches(sql, limits: RowBatchLimits(maxRows: 500, maxBytes: 1 << 20)) { batches.append($0) }
        let copied = batches.flatMap { $0 }
        #expect(copied.count == 3000)
        #expect(batches.map(\.count) == [500, 500, 500, 500, 500, 500])
        #expect(copied.map(\.columns) == single.map(\.columns))
        for (a, b) in zip(copied, single) where !zip(a.values, b.values).allSatisfy(identical) {
            Issue.record("row differs: \(a.values) vs \(b.values)")
            break
        }
    }

    @Test func largeRowsComeOneBatchEach() throws {
        let connection = try TestDatabase.connect()
        var sizes: [Int] = []
        try connection.streamBatches(
            "SELECT g, decode(repeat('ab', 100000), 'hex') AS data FROM generate_series(1, 5) g",
            limits: RowBatchLimits(maxRows: 256, maxBytes: 64 << 10)
        ) { batch in sizes.append(batch.count) }
        #expect(sizes == [1, 1, 1, 1, 1])
        var none = 0
        try connection.streamBatches("SELECT 1::int4 AS x WHERE false") { _ in none += 1 }
        #expect(none == 0)
    }

    @Test func typesAndParametersAreRefusedBeforeAnyRow() throws {
        let connection = try TestDatabase.connect()
        var rows = 0
        #expect { try connection.streamBatches("SELECT point(1, 2) AS p") { rows += $0.count } } throws: { error in
            (error as? PostgresError)?.kind == .unsupportedType
        }
        #expect { try connection.streamBatches("SELECT $1::int4 AS x") { rows += $0.count } } throws: { error in
            (error as? PostgresError)?.kind == .misuse
        }
        #expect { try connection.streamBatches("SELEC 1") { rows += $0.count } } throws: { error in
            (error as? PostgresError)?.sqlstate == "42601"
        }
        #expect(rows == 0)
        #expect(try connection.query("SELECT 1::int4 AS one").rows[0]["one"] == .int32(1))
    }

    /// A server error after some rows: those rows were delivered, the error carries its SQLSTATE, the connection
    /// stays usable.
    @Test func aServerErrorMidStreamKeepsItsSQLSTATE() throws {
        let connection = try TestDatabase.connect()
        var delivered = 0
        #expect {
            try connection.streamBatches("SELECT 1 / (5000 - g) AS x FROM generate_series(1, 100000) g",
                                         limits: RowBatchLimits(maxRows: 100)) { delivered += $0.count }
        } throws: { error in
            let error = error as? PostgresError
            return error?.sqlstate == "22012" && error?.kind == .queryFailed
        }
        #expect(delivered > 0 && delivered < 5000)
        #expect(try connection.query("SELECT 2::int4 AS two").rows[0]["two"] == .int32(2))
    }

    @Test func throwingBodyCancelsTheCopyAndKeepsTheConnectionUsable() throws {
        let connection = try TestDatabase.connect()
        let started = ContinuousClock.now
        var seen = 0
        #expect(throws: StopStreaming.self) {
            try connection.streamBatches("SELECT generate_series(1::int8, 1000000000) AS g", limits: RowBatchLimits(maxRows: 100)) { batch in
                seen += batch.count
                if seen >= 1000 { throw StopStreaming() }
            }
        }
        #expect(seen == 1000)
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(try connection.query("SELECT 41::int8 + 1 AS answer").rows[0]["answer"] == .int64(42))
    }

    /// The next step runs extraction inside one READ ONLY REPEATABLE READ transaction: the COPY must work there and
    /// leave the transaction open.
    @Test func worksInsideATransaction() throws {
        let connection = try TestDatabase.connect()
        try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        var count = 0
        try connection.streamBatches("SELECT g FROM generate_series(1, 10) g") { count += $0.count }
        #expect(count == 10 && connection.isInTransaction)
        try connection.execute("COMMIT")
        #expect(!connection.isInTransaction)
    }

    @Test func literalsAreEscapedForTheServer() throws {
        let connection = try TestDatabase.connect()
        for text in ["it's", "back\\slash", "2026-01-01 00:00:00+00", "\"quoted\" ü 😀", "", "E'x' $1 --"] {
            let literal = try connection.escapeLiteral(text)
            #expect(try connection.query("SELECT \(literal)::text AS t").rows[0]["t"] == .text(text))
        }
        #expect(throws: PostgresError.self) { try connection.escapeLiteral("nul\0") }
    }
}
