import Foundation
import Testing
@testable import Postgres

struct StopStreaming: Error {}

@Suite(needsDatabase)
struct StreamingTests {
    @Test func streamsAHundredThousandRows() throws {
        let connection = try TestDatabase.connect()
        var count = 0, sum: Int64 = 0
        var lastLabel = ""
        try connection.stream(
            "SELECT g::int8 AS n, md5(g::text) AS label FROM generate_series(1, $1::int4) g ORDER BY g", ["100000"]
        ) { row in
            count += 1
            guard case .int64(let n) = row.values[0], case .text(let label) = row["label"] else {
                Issue.record("unexpected row \(row)")
                return
            }
            sum += n
            lastLabel = label
        }
        #expect(count == 100_000)
        #expect(sum == 100_000 * 100_001 / 2)
        #expect(try connection.query("SELECT md5('100000') AS m").rows[0]["m"] == .text(lastLabel))
    }

    @Test func streamsLargeByteaRows() throws {
        let connection = try TestDatabase.connect()
        let size = 5 * 1024 * 1024
        var sizes: [Int] = []
        try connection.stream("""
            SELECT i, decode(repeat(lpad(to_hex(i), 2, '0'), $1::int4), 'hex') AS data
            FROM generate_series(1, 4) i
            """, [String(size)]
        ) { row in
            guard case .int32(let i) = row["i"], case .bytea(let data) = row["data"] else {
                Issue.record("unexpected row")
                return
            }
            sizes.append(data.count)
            #expect(data.allSatisfy { $0 == UInt8(i) })
        }
        #expect(sizes == [size, size, size, size])
    }

    @Test func emptyResultAndCommandsStreamNothing() throws {
        let connection = try TestDatabase.connect()
        var rows = 0
        try connection.stream("SELECT 1::int4 AS x WHERE false") { _ in rows += 1 }
        try connection.stream("SET application_name = 'etl-test'") { _ in rows += 1 }
        #expect(rows == 0)
    }

    /// The body stops after a few rows of a query that would otherwise run for a long time: the server must be
    /// told to stop, and the connection must be idle and usable right after.
    @Test func throwingBodyCancelsTheQueryAndKeepsTheConnectionUsable() throws {
        let connection = try TestDatabase.connect()
        let observer = try TestDatabase.connect()
        let started = ContinuousClock.now
        var seen = 0
        #expect(throws: StopStreaming.self) {
            // In the select list generate_series yields rows one by one (in FROM it would materialize them all
            // first); unstopped, this runs for minutes.
            try connection.stream("SELECT generate_series(1::int8, 1000000000) AS g") { _ in
                seen += 1
                if seen == 1000 { throw StopStreaming() }
            }
        }
        #expect(seen == 1000)
        let elapsed = ContinuousClock.now - started
        print("[cancel] stopped a 10^9-row stream after 1000 rows in \(elapsed)")
        #expect(elapsed < .seconds(20))
        #expect(try connection.query("SELECT 41::int8 + 1 AS answer").rows[0]["answer"] == .int64(42))
        let activity = try observer.query(
            "SELECT state FROM pg_stat_activity WHERE pid = $1::int4", [String(connection.backendPID)])
        #expect(activity.rows.first?["state"] == .text("idle"))
    }

    @Test func serverErrorMidStreamThrowsAfterTheRowsBeforeIt() throws {
        let connection = try TestDatabase.connect()
        var seen = 0
        let error = try #require(throws: PostgresError.self) {
            try connection.stream("SELECT 1 / (5000 - g) AS x FROM generate_series(1, 10000) g") { _ in seen += 1 }
        }
        #expect(error.kind == .queryFailed)
        #expect(error.sqlstate == "22012")
        #expect(error.message == "division by zero")
        #expect(!error.isRetryable)
        #expect(seen > 0 && seen < 5000)
        #expect(try connection.query("SELECT 1::int2 AS one").rows[0]["one"] == .int16(1))
    }

    @Test func backendTerminatedMidStreamIsConnectionLost() throws {
        let connection = try TestDatabase.connect()
        let admin = try TestDatabase.connect()
        var seen = 0
        let error = try #require(throws: PostgresError.self) {
            try connection.stream("SELECT generate_series(1::int8, 1000000000) AS g") { _ in
                seen += 1
                if seen == 100 {
                    _ = try admin.query("SELECT pg_terminate_backend($1::int4)", [String(connection.backendPID)])
                }
            }
        }
        #expect(error.kind == .connectionLost, "\(error)")
        #expect(error.isRetryable)
        #expect(!connection.isConnected)
    }

    @Test func usingTheConnectionInsideTheBodyIsMisuse() throws {
        let connection = try TestDatabase.connect()
        let error = try #require(throws: PostgresError.self) {
            try connection.stream("SELECT g FROM generate_series(1, 10) g") { _ in
                _ = try connection.query("SELECT 1")
            }
        }
        #expect(error.kind == .misuse)
        #expect(try connection.query("SELECT 2::int4 AS two").rows[0]["two"] == .int32(2))
    }

    @Test func copyIsRefusedWithoutBreakingTheConnection() throws {
        let connection = try TestDatabase.connect()
        let out = try #require(throws: PostgresError.self) { try connection.execute("COPY (SELECT 1) TO STDOUT") }
        #expect(out.kind == .misuse)
        try TestDatabase.withSchema { other, schema in
            try other.execute("CREATE TABLE \(schema).t (x int)")
            let into = try #require(throws: PostgresError.self) { try other.execute("COPY \(schema).t FROM STDIN") }
            #expect(into.kind == .misuse)
            #expect(try other.query("SELECT count(*) AS n FROM \(schema).t").rows[0]["n"] == .int64(0))
        }
        #expect(try connection.query("SELECT 3::int4 AS three").rows[0]["three"] == .int32(3))
    }
}
