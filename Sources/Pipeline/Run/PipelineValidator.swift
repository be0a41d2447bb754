import Dataset
import Foundation
import ObjectStorage
import Postgres
import SystemIO

/// Checks what a pipeline file cannot show on its own. Nothing is read from the source beyond plans and one maximum,
/// and nothing is written anywhere.
public enum PipelineValidator {
    /// That the output root can hold datasets: it exists as a writable directory, or can be created. Done offline too,
    /// so a root under /proc or on a read-only mount is reported by `validate`, not half-way through a run.
    /// For `s3://`, that the settings and credentials resolve (no request is sent).
    public static func checkOutputRoot(_ config: PipelineConfig) throws(PipelineConfigError) {
        let problem: String?
        if DatasetStores.urlScheme(config.outputRoot) == "s3" {
            do { _ = try S3Configuration.resolve(config.storage); problem = nil } catch { problem = error.message }
        } else {
            problem = FileSystem.creatableDirectoryProblem(config.outputRoot)
        }
        guard let problem else { return }
        var issues = ConfigIssues()
        issues.add("output_root '\(config.outputRoot)' cannot hold datasets: \(problem)", at: config.outputRootLocation)
        throw PipelineConfigError(issues: issues.all)
    }

    /// That the query runs, returns the named columns, and that their PostgreSQL types map to the requested encodings.
    /// Returns warnings a person should read: a cursor predicate that cannot use an index (every run would read the
    /// whole table), and what exactly-once extraction cannot see on this source.
    @discardableResult
    public static func checkAgainstSource(_ config: PipelineConfig) throws -> [String] {
        let source = try PreparedSource(config)
        // The incremental form must also be valid SQL for the cursor's type.
        _ = try source.connection.describe(source.sql(after: ""), parameterCount: 1)
        var warnings = scanWarnings(source, config: config)
        if let visibility = visibilityWarning(source.connection) { warnings.append(visibility) }
        return warnings
    }

    /// EXPLAIN of the incremental query bound to the newest cursor value (what a nightly run asks for): a sequential
    /// scan that filters on the cursor means every run reads the whole table.
    static func scanWarnings(_ source: PreparedSource, config: PipelineConfig) -> [String] {
        let cursor = quoteIdentifier(config.source.cursorColumn)
        let maxSQL = "SELECT max(etl_source.\(cursor))::text FROM (\n\(config.source.query)\n) AS etl_source"
        guard let maxRow = try? source.connection.query(maxSQL), case .text(let newest)? = maxRow.rows.first?.values.first else {
            return []  // an empty source: nothing to plan against yet
        }
        guard let tree = source.explain(after: newest, verbose: true) else { return [] }
        var warnings: [String] = []
        func walk(_ node: Any) {
            if let list = node as? [Any] { list.forEach(walk); return }
            guard let object = node as? [String: Any] else { return }
            if let plan = object["Plan"] { walk(plan) }
            if object["Node Type"] as? String == "Seq Scan", let filter = object["Filter"] as? String,
               filter.contains(config.source.cursorColumn), let relation = object["Relation Name"] as? String {
                let schema = (object["Schema"] as? String).map { "\($0)." } ?? ""
                warnings.append("the cursor predicate on '\(config.source.cursorColumn)' cannot use an index on \(schema)\(relation): every run reads the whole table (Seq Scan, Filter: \(filter)); an index on the cursor column fixes it")
            }
            if let children = object["Plans"] { walk(children) }
        }
        walk(tree)
        return warnings
    }

    /// On a hot standby, or where this role cannot see other sessions, late-committing rows are found by transaction ids
    /// alone; say what that cannot cover.
    static func visibilityWarning(_ connection: PostgresConnection) -> String? {
        guard let visibility = try? SourceSnapshot.visibility(on: connection), visibility.standby || visibility.hiddenSessions > 0 else {
            return nil
        }
        let why = visibility.standby ? "the source is a hot standby (the writers' sessions are on the primary)"
            : "this role cannot see \(visibility.hiddenSessions) other session(s) (grant pg_read_all_stats to see them)"
        return "\(why): rows committed late are found by transaction ids only, which covers cursors taken by a sequence or the clock when a row is inserted, but not a now() timestamp of a transaction that reads for longer than the time between two runs before it inserts"
    }
}
