import Testing
@testable import Postgres
@Test func smoke() throws {
    let c = try PostgresConnection(conninfo: "")
    print(try c.query("SELECT 1::int8 AS a, 'x'::text AS b").rows)
}
