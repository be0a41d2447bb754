import Postgres

/// The source as a run sees it: a connection, the wrapped query, and the plan checked against the query's real
/// result columns. `etl run` and `etl validate` both start here, so what validate accepts is what run executes.
struct PreparedSource {
    let connection: PostgresConnection
    let query: SourceQuery
    let plan: SamplePlan

    init(_ config: PipelineConfig) throws {
        connection = try PostgresConnection(conninfo: config.source.connection)
        query = SourceQuery(userQuery: config.source.query, cursorColumn: config.source.cursorColumn, keyColumn: config.source.keyColumn)
        plan = try SamplePlan(config: config, columns: try connection.describe(query.describeSQL))
    }

    /// The statement a run streams: the used columns, after the cursor when there is one.
    func sql(after cursor: String?) -> String {
        query.sql(selecting: plan.selectedColumns, after: cursor == nil ? nil : plan.cursorType)
    }
}
