import Foundation
import Testing
@testable import Postgres

/// The throwaway server that scripts/test starts. Its variables are required, not just any PG* settings a developer
/// may have exported: these tests create and drop objects and must never run against a real database.
enum TestDatabase {
    static let environment = ProcessInfo.processInfo.environment
    static var isAvailable: Bool { environment["ETL_TEST_PG_TCP_PORT"] != nil && environment["PGHOST"] != nil }
    static var tcpPort: String { environment["ETL_TEST_PG_TCP_PORT"] ?? "5432" }
    static var database: String { environment["PGDATABASE"] ?? "etl_test" }

    /// Over the unix socket with trust authentication, from the PG* variables.
    static func connect() throws -> PostgresConnection {
        try PostgresConnection(conninfo: "")
    }

    static func uniqueName(_ prefix: String) -> String {
        prefix + "_" + UUID().uuidString.lowercased().replacing("-", with: "").prefix(16)
    }

    /// Runs `body` with a schema of its own, dropped afterwards from a fresh connection (the test's may be broken).
    static func withSchema<R>(_ body: (PostgresConnection, String) throws -> R) throws -> R {
        let connection = try connect()
        let schema = uniqueName("test")
        try connection.execute("CREATE SCHEMA \(schema)")
        defer { _ = try? connect().execute("DROP SCHEMA \(schema) CASCADE") }
        return try body(connection, schema)
    }

    /// A role that must log in with a password over TCP (scram, per scripts/lib.sh), dropped afterwards.
    static func withPasswordRole<R>(password: String, _ body: (String) throws -> R) throws -> R {
        let admin = try connect()
        let role = uniqueName("role")
        // Role names and passwords cannot be parameters of CREATE ROLE; both are generated or fixed by the test.
        try admin.execute("CREATE ROLE \(role) LOGIN PASSWORD '\(password.replacing("'", with: "''"))'")
        defer { _ = try? connect().execute("DROP ROLE \(role)") }
        return try body(role)
    }
}

let needsDatabase = Testing.ConditionTrait.enabled(
    if: TestDatabase.isAvailable, "needs the PostgreSQL that scripts/test starts")

/// Equality that also holds for NaN, compared by bit pattern: the round trip must be exact, not merely ==.
func identical(_ a: PostgresValue, _ b: PostgresValue) -> Bool {
    switch (a, b) {
    case let (.float32(x), .float32(y)): return x.bitPattern == y.bitPattern
    case let (.float64(x), .float64(y)): return x.bitPattern == y.bitPattern
    default: return a == b
    }
}
