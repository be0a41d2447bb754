import Postgres

/// Checks what a pipeline file cannot show on its own: that the query runs, returns the named columns, and that
/// their PostgreSQL types map to the requested encodings. Nothing is read or written.
public enum PipelineValidator {
    public static func checkAgainstSource(_ config: PipelineConfig) throws {
        let connection = try PostgresConnection(conninfo: config.source.connection)
        let query = SourceQuery(userQuery: config.source.query, cursorColumn: config.source.cursorColumn, keyColumn: config.source.keyColumn)
        let plan = try SamplePlan(config: config, columns: try connection.describe(query.describeSQL))
        // The incremental form must also be valid SQL for the cursor's type.
        _ = try connection.describe(query.sql(selecting: plan.selectedColumns, after: plan.cursorType), parameterCount: 1)
    }
}
