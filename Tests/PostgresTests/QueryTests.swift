import Foundation
import Testing
@testable import Postgres

@Suite(needsDatabase)
struct QueryTests {
    @Test func syntaxErrorReportsSQLSTATEAndPosition() throws {
        let connection = try TestDatabase.connect()
        let error = try #require(throws: PostgresError.self) { try connection.query("SELEC 1") }
        #expect(error.kind == .queryFailed)
        #expect(error.sqlstate == "42601")
        #expect(error.message.contains("syntax error"))
        #expect(error.position == 1)
        #expect(!error.isRetryable)
        #expect(error.description.contains("SELEC 1"))
    }

    @Test func undefinedColumnCarriesTheServersMessageAndHint() throws {
        try TestDatabase.withSchema { connection, schema in
            try connection.execute("CREATE TABLE \(schema).items (created_at timestamptz)")
            let error = try #require(throws: PostgresError.self) {
                try connection.query("SELECT created_ta FROM \(schema).items")
            }
            #expect(error.kind == .queryFailed)
            #expect(error.sqlstate == "42703")
            #expect(error.message == "column \"created_ta\" does not exist")
            #expect(error.position == 8)
            #expect(error.hint?.contains("created_at") == true)
            #expect(error.description.contains("hint: "))
            #expect(!error.isRetryable)
        }
    }

    @Test func divisionByZeroInQuery() throws {
        let connection = try TestDatabase.connect()
        let error = try #require(throws: PostgresError.self) { try connection.query("SELECT 1 / 0") }
        #expect(error.sqlstate == "22012")
        #expect(try connection.query("SELECT 1::int4 AS ok").rows.count == 1)
    }

    /// Values travel as parameters, so SQL in them stays data.
    @Test func parametersAreDataNotSQL() throws {
        try TestDatabase.withSchema { connection, schema in
            try connection.execute("CREATE TABLE \(schema).students (id int4, name text, note text)")
            let hostile = "Robert'); DROP TABLE \(schema).students; --"
            let quoted = "it's \"quoted\" \\ and $1 and ?"
            try connection.execute(
                "INSERT INTO \(schema).students VALUES ($1, $2, $3), ($4, $5, $6)", ["1", hostile, quoted, "2", "x", nil])
            let rows = try connection.query("SELECT id, name, note FROM \(schema).students ORDER BY id").rows
            #expect(rows.count == 2)
            #expect(rows[0]["name"] == .text(hostile))
            #expect(rows[0]["note"] == .text(quoted))
            #expect(rows[1]["note"] == .null)
            let found = try connection.query("SELECT id FROM \(schema).students WHERE name = $1", [hostile]).rows
            #expect(found.count == 1)
            // Multiple statements cannot be smuggled in either: the extended protocol takes exactly one.
            let error = try #require(throws: PostgresError.self) {
                try connection.execute("SELECT 1; DROP TABLE \(schema).students")
            }
            #expect(error.sqlstate == "42601")
            #expect(try connection.query("SELECT count(*) AS n FROM \(schema).students").rows[0]["n"] == .int64(2))
        }
    }

    @Test func nulCharactersInParametersAreRefused() throws {
        let connection = try TestDatabase.connect()
        let error = try #require(throws: PostgresError.self) { try connection.query("SELECT $1::text", ["a\u{0}b"]) }
        #expect(error.kind == .misuse)
    }

    @Test func describeReportsColumnsWithoutRunning() throws {
        try TestDatabase.withSchema { connection, schema in
            try connection.execute("CREATE TABLE \(schema).events (id int8, at timestamptz, took interval, tags text[])")
            let columns = try connection.describe(
                "SELECT id, at, took, tags, $1::text AS note FROM \(schema).events WHERE at > $2", parameterCount: 2)
            #expect(columns.map(\.name) == ["id", "at", "took", "tags", "note"])
            #expect(columns.map(\.type.name) == ["int8", "timestamptz", "interval", "_text", "text"])
            #expect(columns.map(\.type.isSupported) == [true, true, false, true, true])

            let statement = try connection.describeStatement("SELECT * FROM \(schema).events WHERE at > $1")
            #expect(statement.parameters.map(\.name) == ["timestamptz"])

            _ = try connection.describe("INSERT INTO \(schema).events (id) VALUES (1) RETURNING id")
            #expect(try connection.query("SELECT count(*) AS n FROM \(schema).events").rows[0]["n"] == .int64(0))

            let mismatch = try #require(throws: PostgresError.self) {
                try connection.describe("SELECT * FROM \(schema).events WHERE at > $1")
            }
            #expect(mismatch.kind == .misuse)
            let bad = try #require(throws: PostgresError.self) { try connection.describe("SELECT nope FROM \(schema).events") }
            #expect(bad.sqlstate == "42703")
        }
    }

    @Test func advisoryLocksContendBetweenSessions() throws {
        let first = try TestDatabase.connect()
        let second = try TestDatabase.connect()
        let key = Int64.random(in: Int64.min...Int64.max)
        #expect(try first.tryAdvisoryLock(key))
        #expect(try !second.tryAdvisoryLock(key))
        #expect(try first.advisoryUnlock(key))
        #expect(try second.tryAdvisoryLock(key))
        #expect(try !first.tryAdvisoryLock(key))
        #expect(try second.advisoryUnlock(key))
        #expect(try !second.advisoryUnlock(key))
    }

    @Test func advisoryLockIsReleasedWhenTheSessionEnds() throws {
        let key = Int64.random(in: Int64.min...Int64.max)
        do {
            let holder = try TestDatabase.connect()
            #expect(try holder.tryAdvisoryLock(key))
        }
        let other = try TestDatabase.connect()
        // PQfinish returns before the server has cleaned up the session.
        var acquired = false
        for _ in 0..<100 where !acquired {
            acquired = try other.tryAdvisoryLock(key)
            if !acquired { usleep(20_000) }
        }
        #expect(acquired)
    }
}
