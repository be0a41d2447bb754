import Postgres
import SystemIO

/// Checks what a pipeline file cannot show on its own. Nothing is read from the source or written anywhere.
public enum PipelineValidator {
    /// That the output root can hold datasets: it exists as a writable directory, or can be created. Done offline too,
    /// so a root under /proc or on a read-only mount is reported by `validate`, not half-way through a run.
    public static func checkOutputRoot(_ config: PipelineConfig) throws(PipelineConfigError) {
        guard let problem = FileSystem.creatableDirectoryProblem(config.outputRoot) else { return }
        var issues = ConfigIssues()
        issues.add("output_root '\(config.outputRoot)' cannot hold datasets: \(problem)", at: config.outputRootLocation)
        throw PipelineConfigError(issues: issues.all)
    }

    /// That the query runs, returns the named columns, and that their PostgreSQL types map to the requested encodings.
    public static func checkAgainstSource(_ config: PipelineConfig) throws {
        let source = try PreparedSource(config)
        // The incremental form must also be valid SQL for the cursor's type.
        _ = try source.connection.describe(source.sql(after: ""), parameterCount: 1)
    }
}
