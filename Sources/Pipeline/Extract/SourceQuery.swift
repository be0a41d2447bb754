import Foundation
import Postgres

/// The user's query wrapped so that rows come in a stable order (cursor, then key: same input, same shards) and,
/// for an incremental run, only after the last published cursor value, bound as a parameter.
struct SourceQuery {
    let userQuery: String
    let cursorColumn: String
    let keyColumn: String

    /// For describing the result columns without reading rows.
    var describeSQL: String { "SELECT * FROM (\n\(userQuery)\n) AS etl_source" }

    /// Only `columns` are fetched: what the pipeline does not use is neither transferred nor decoded.
    func sql(selecting columns: [String], after cursorType: String?) -> String {
        let list = columns.map { "etl_source.\(quoteIdentifier($0))" }.joined(separator: ", ")
        // Rows with a NULL cursor can never be placed before or after a published cursor, so they are never read.
        var sql = "SELECT \(list) FROM (\n\(userQuery)\n) AS etl_source\nWHERE etl_source.\(quoteIdentifier(cursorColumn)) IS NOT NULL"
        if let cursorType {
            sql += " AND etl_source.\(quoteIdentifier(cursorColumn)) > $1::\(cursorType)"
        }
        sql += "\n" + Self.orderByPrefix + "\(quoteIdentifier(cursorColumn)), etl_source.\(quoteIdentifier(keyColumn))"
        return sql
    }

    /// The rows of a re-read window: cursor in ($1, $2] (in [start, $1] when `fromStart`), in the stable order.
    /// `keysOnly`: just (cursor, key, key::text), no payload; else the `columns` of the rows whose key::text is in the
    /// text array bound last ($3, or $2 when `fromStart`).
    /// `partition` (i, N): only the rows whose key hashes to i (a partitioned run's share, see PartitionHash).
    func windowSQL(selecting columns: [String], cursorType: String, fromStart: Bool, keysOnly: Bool,
                   partition: (index: Int, count: Int)? = nil) -> String {
        let cursor = "etl_source.\(quoteIdentifier(cursorColumn))", key = "etl_source.\(quoteIdentifier(keyColumn))"
        let list = keysOnly ? "\(cursor), \(key), \(key)::text" : columns.map { "etl_source.\(quoteIdentifier($0))" }.joined(separator: ", ")
        var sql = "SELECT \(list) FROM (\n\(userQuery)\n) AS etl_source\nWHERE \(cursor) IS NOT NULL"
        var parameter = 1
        if !fromStart {
            sql += " AND \(cursor) > $1::\(cursorType)"
            parameter = 2
        }
        sql += " AND \(cursor) <= $\(parameter)::\(cursorType)"
        if !keysOnly { sql += " AND \(key)::text = ANY($\(parameter + 1)::text[])" }
        if let partition, partition.count > 1 { sql += " AND \(PartitionHash.sql(key: key, count: partition.count)) = \(partition.index)" }
        return sql + "\n" + Self.orderByPrefix + "\(quoteIdentifier(cursorColumn)), \(key)"
    }

    private static let orderByPrefix = "ORDER BY etl_source."

    /// `sql` as made by `sql(selecting:after:)`, with its cursor parameter `$1` replaced by `literal` (already escaped
    /// by the connection), or nil when `sql` is not exactly of that shape. Statements that cannot take parameters
    /// (COPY) need the value inline; only the wrapper's own predicate is touched, never the user's text: the
    /// predicate is recognized at the one place the wrapper puts it, right before its final ORDER BY line.
    static func inliningCursor(_ sql: String, literal: String) -> String? {
        guard let orderBy = sql.range(of: "\n" + orderByPrefix, options: .backwards) else { return nil }
        let head = sql[..<orderBy.lowerBound]
        for type in cursorTypes {
            let placeholder = " > $1::" + type
            if head.hasSuffix(placeholder) {
                return head.dropLast(placeholder.count) + " > " + literal + "::" + type + sql[orderBy.lowerBound...]
            }
        }
        return nil
    }
}

/// Identifiers are quoted, never pasted bare: column names come from the pipeline file.
func quoteIdentifier(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// Column types a cursor can be: totally ordered, and exactly re-bindable from their text form.
let cursorTypes: Set<String> = ["int2", "int4", "int8", "numeric", "timestamptz", "timestamp", "date"]

/// A text[] literal for a bound parameter: every element double-quoted, with `"` and `\` escaped.
func postgresTextArray(_ elements: [String]) -> String {
    "{" + elements.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        .joined(separator: ",") + "}"
}
