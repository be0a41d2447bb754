import Foundation
import Testing
@testable import Postgres

/// `streamCopyRows` hands rows over undecoded; everything a consumer reads from a batch must be what the decoding path
/// (`streamBatches`) gives for the same statement, and the framing is checked before a row joins a batch.
@Suite struct CopyRowFramingTests {
    private let columns = [PostgresColumn(name: "id", type: PostgresType(oid: 20, name: "int8")),
                           PostgresColumn(name: "label", type: PostgresType(oid: 25, name: "text"))]

    private func message(header: Bool, fields: [[UInt8]?], count: Int? = nil) -> [UInt8] {
        var bytes: [UInt8] = header ? CopyRowDecoder.signature + [0, 0, 0, 0, 0, 0, 0, 0] : []
        bytes += withUnsafeBytes(of: Int16(count ?? fields.count).bigEndian, Array.init)
        for field in fields {
            guard let field else { bytes += [0xFF, 0xFF, 0xFF, 0xFF]; continue }
            bytes += withUnsafeBytes(of: Int32(field.count).bigEndian, Array.init) + field
        }
        return bytes
    }

    private func frame(_ decoder: inout CopyRowDecoder, _ message: [UInt8]) throws -> [UInt8]? {
        try message.withUnsafeBytes { bytes in try decoder.frame(bytes).map { Array($0) } }
    }

    @Test func framesRowsAfterTheHeaderAndStopsAtTheTrailer() throws {
        var decoder = CopyRowDecoder(columns: columns, formats: [.int64, .text], statement: "s")
        let id = withUnsafeBytes(of: Int64(7).bigEndian, Array.init)
        let first = message(header: true, fields: [id, Array("né".utf8)])
        // The tuple starts at the field count, after the 19-byte file header.
        #expect(try frame(&decoder, first) == Array(first[19...]))
        let second = message(header: false, fields: [id, nil])
        #expect(try frame(&decoder, second) == second)
        #expect(try frame(&decoder, [0xFF, 0xFF]) == nil)
        #expect(decoder.sawTrailer)
        #expect(throws: PostgresError.self) { _ = try frame(&decoder, second) }
    }

    @Test func refusesFramingThatIsNotOneRow() {
        let id = withUnsafeBytes(of: Int64(7).bigEndian, Array.init)
        let bad: [(String, [UInt8])] = [
            ("a field too few", message(header: true, fields: [id])),
            ("a length past the end", Array(message(header: true, fields: [id, Array("abc".utf8)]).dropLast())),
            ("bytes after the row", message(header: true, fields: [id, nil]) + [0]),
            ("a negative length", message(header: true, fields: [id]) + [0xFF, 0xFF, 0xFF, 0xFE]),
            ("no signature", message(header: false, fields: [id, nil])),
        ]
        for (what, bytes) in bad {
            var decoder = CopyRowDecoder(columns: columns, formats: [.int64, .text], statement: "s")
            #expect(throws: PostgresError.self, "\(what)") { _ = try frame(&decoder, bytes) }
        }
    }

    @Test func textIsValidOnlyAsUTF8() {
        for (bytes, valid) in [(Array("plain".utf8), true), (Array("né 🙂".utf8), true), ([], true), ([0xFF], false),
                               ([0x61, 0xC3], false), ([0xED, 0xA0, 0x80], false)] as [([UInt8], Bool)] {
            #expect(bytes.withUnsafeBytes(CopyRowBatch.isValidText) == valid, "\(bytes)")
        }
    }
}

@Suite(needsDatabase)
struct CopyRowBatchTests {
    static let sql = """
        SELECT g::int8 AS id, (g % 3 = 0) AS flag, g::int2 AS small, (g / 7.0)::float4 AS f4,
               (g / 7.0)::numeric(12, 4) AS num, CASE WHEN g % 5 = 0 THEN NULL ELSE repeat(md5(g::text), g % 3) || 'é' END AS label,
               timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' AS at, date '2000-02-28' + g AS day,
               jsonb_build_object('g', g) AS doc, md5(g::text)::uuid AS u, ARRAY['a', NULL, g::text] AS tags,
               ''::text AS empty
        FROM generate_series(1, 3000) g ORDER BY g
        """

    /// Every row, read field by field in place and decoded whole, equals the decoding path's row.
    @Test func fieldsAndRowsEqualTheDecodedStream() throws {
        let connection = try TestDatabase.connect()
        var decoded: [PostgresRow] = []
        try connection.streamBatches(Self.sql) { decoded += $0 }
        var batches: [CopyRowBatch] = []
        try connection.streamCopyRows(Self.sql, limits: RowBatchLimits(maxRows: 500, maxBytes: 1 << 20)) { rows in
            guard case .tuples(let batch) = rows else { throw TestFailure("a row without bytea came assembled") }
            batches.append(batch)
        }
        #expect(batches.map(\.count) == [500, 500, 500, 500, 500, 500])
        var index = 0
        for batch in batches {
            #expect(batch.columns == decoded[0].columns)
            var fields = [CopyField](repeating: CopyField(), count: batch.columns.count)
            for row in 0..<batch.count {
                let expected = decoded[index].values
                index += 1
                #expect(try batch.row(row).values == expected)
                let inPlace = try batch.withTuples { tuples in
                    try fields.withUnsafeMutableBufferPointer { fields in
                        batch.fieldRanges(ofRow: row, in: tuples, into: fields)
                        return try batch.columns.indices.map { column -> PostgresValue in
                            let field = fields[column]
                            if field.isNull { return .null }
                            let bytes = field.bytes(in: tuples)
                            if batch.isText(column) {
                                #expect(CopyRowBatch.isValidText(bytes))
                                return .text(String(decoding: bytes, as: UTF8.self))
                            }
                            return try batch.decode(bytes, column: column)
                        }
                    }
                }
                if inPlace != expected {
                    Issue.record("row \(index) read in place: \(inPlace) vs \(expected)")
                    return
                }
            }
        }
        #expect(index == 3000)
    }

    /// The statement's errors are the decoding path's: before any row, and from the server in the middle.
    @Test func errorsNameTheStatement() throws {
        let connection = try TestDatabase.connect()
        let broken = "SELECT 1/(3000 - g) AS x FROM generate_series(1, 5000) g"
        var rows = 0
        let error = #expect(throws: PostgresError.self) { try connection.streamCopyRows(broken) { if case .tuples(let batch) = $0 { rows += batch.count } } }
        #expect(error?.sqlstate == "22012" && error?.statement == broken)
        #expect(rows > 0 && rows < 3000)
        #expect(try connection.query("SELECT 1").rows.count == 1, "the connection is usable again")
        let typo = #expect(throws: PostgresError.self) { try connection.streamCopyRows("SELECT nope FROM generate_series(1, 3) g") { _ in } }
        #expect(typo?.description.contains("nope") == true)
    }
}

@Suite(needsDatabase)
struct ChunkedCopyRowsTests {
    /// With bytea values around a small chunk, rows that fit come undecoded and larger ones assembled, in the source's
    /// order, each equal to the decoding path's row.
    @Test func wholeRowsComeUndecodedAndLargerOnesAssembledInOrder() throws {
        let connection = try TestDatabase.connect()
        let sql = """
            SELECT g AS id, CASE WHEN g % 7 = 0 THEN NULL ELSE substring(decode(repeat(md5(g::text), 300), 'hex') FROM 1 FOR (g * 131) % 9000) END AS a,
                   'row ' || g AS note, CASE WHEN g % 5 = 0 THEN NULL ELSE decode(repeat(md5((g * 3)::text), 10), 'hex') END AS b
            FROM generate_series(1, 400) g ORDER BY g
            """
        let chunking = ByteaChunking(chunkSize: 4096)
        var decoded: [PostgresRow] = []
        try connection.streamBatches(sql, chunking: chunking) { decoded += $0 }
        var streamed: [PostgresRow] = []
        var undecoded = 0, assembled = 0
        try connection.streamCopyRows(sql, limits: RowBatchLimits(maxRows: 16, maxBytes: 1 << 20), chunking: chunking) { rows in
            switch rows {
            case .tuples(let batch):
                undecoded += batch.count
                for index in 0..<batch.count { streamed.append(try batch.row(index)) }
            case .assembled(let row):
                assembled += 1
                streamed.append(row)
            }
        }
        #expect(decoded.count == 400 && streamed.count == 400)
        #expect(undecoded > 100 && assembled > 100, "\(undecoded) whole, \(assembled) in parts")
        #expect(streamed.map(\.values) == decoded.map(\.values))
    }
}

private struct TestFailure: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
