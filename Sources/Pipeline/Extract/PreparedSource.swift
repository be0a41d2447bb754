import Foundation
import Postgres

/// The source as a run sees it: a connection, the wrapped query, and the plan checked against the query's real
/// result columns. `etl run` and `etl validate` both start here, so what validate accepts is what run executes.
struct PreparedSource {
    let connection: PostgresConnection
    let query: SourceQuery
    let plan: SamplePlan

    init(_ config: PipelineConfig) throws {
        connection = try Self.connect(config)
        query = SourceQuery(userQuery: config.source.query, cursorColumn: config.source.cursorColumn, keyColumn: config.source.keyColumn)
        plan = try SamplePlan(config: config, columns: try connection.describe(query.describeSQL))
    }

    private static func connect(_ config: PipelineConfig) throws -> PostgresConnection {
        let failure: PostgresError
        do { return try PostgresConnection(conninfo: config.source.connection) } catch { failure = error }
        guard failure.kind == .invalidConninfo else { throw failure }
        // A malformed connection string is the file's problem (exit 2), not a failed query: point at its line.
        var issues = ConfigIssues()
        issues.add(failure.description, at: config.source.connectionLocation ?? config.source.queryLocation)
        throw PipelineConfigError(issues: issues.all)
    }

    /// The statement a run streams: the used columns, after the cursor when there is one.
    func sql(after cursor: String?) -> String {
        query.sql(selecting: plan.selectedColumns, after: cursor == nil ? nil : plan.cursorType)
    }

    /// PostgreSQL's row estimate for the statement a run streams (EXPLAIN, nothing executed); nil if it gives none.
    func estimatedRows(after cursor: String?) -> Int? {
        guard let top = explain(after: cursor)?.first?["Plan"] as? [String: Any], let rows = top["Plan Rows"] as? NSNumber else { return nil }
        return rows.intValue
    }

    /// The plan PostgreSQL would use for the statement a run streams, as decoded `EXPLAIN (FORMAT JSON)`: one object
    /// per statement, each with a `Plan` tree. Nothing is executed. nil when the server gives no plan.
    func explain(after cursor: String?, verbose: Bool = false) -> [[String: Any]]? {
        let sql = "EXPLAIN (FORMAT JSON\(verbose ? ", VERBOSE" : "")) " + sql(after: cursor)
        guard let result = try? connection.query(sql, cursor.map { [$0] } ?? []), let value = result.rows.first?.values.first
        else { return nil }
        let text: String
        switch value {
        case .json(let json), .text(let json): text = json
        default: return nil
        }
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [[String: Any]]
    }
}
