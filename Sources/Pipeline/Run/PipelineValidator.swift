import Postgres

/// Checks what a pipeline file cannot show on its own: that the query runs, returns the named columns, and that
/// their PostgreSQL types map to the requested encodings. Nothing is read or written.
public enum PipelineValidator {
    public static func checkAgainstSource(_ config: PipelineConfig) throws {
        let source = try PreparedSource(config)
        // The incremental form must also be valid SQL for the cursor's type.
        _ = try source.connection.describe(source.sql(after: ""), parameterCount: 1)
    }
}
