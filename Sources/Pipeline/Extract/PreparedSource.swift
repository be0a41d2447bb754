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
        let explain = "EXPLAIN (FORMAT JSON) " + sql(after: cursor)
        guard let result = try? connection.query(explain, cursor.map { [$0] } ?? []), let value = result.rows.first?.values.first
        else { return nil }
        let text: String
        switch value {
        case .json(let json): text = json
        case .text(let plain): text = plain
        default: return nil
        }
        // [{"Plan": {"Plan Rows": 1234, …}}]: the top node's estimate, without a JSON model of the whole plan.
        guard let range = text.range(of: "\"Plan Rows\": ") else { return nil }
        let digits = text[range.upperBound...].prefix { $0.isNumber || $0 == "." || $0 == "e" || $0 == "+" }
        return Double(digits).map { Int($0) }
    }
}
