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

    /// `sql` as made by `sql(selecting:after:)` or `windowSQL`, with its parameters `$1`, `$2`, … replaced by
    /// `literals` (already escaped by the connection), or nil when `sql` is not of that shape. Statements that cannot
    /// take parameters (COPY) need the values inline; only the wrapper's own predicates are touched, never the user's
    /// text: they are recognized after the line the wrapper closes the user's query with, each `$n::` exactly once.
    static func inliningParameters(_ sql: String, literals: [String]) -> String? {
        guard !literals.isEmpty, let close = sql.range(of: userQueryEnd, options: .backwards),
              sql.range(of: "\n" + orderByPrefix, options: .backwards).map({ $0.lowerBound > close.upperBound }) == true
        else { return nil }
        var tail = String(sql[close.upperBound...])
        guard !tail.contains("$\(literals.count + 1)::") else { return nil }  // more parameters than literals
        // Highest first, so that `$1::` is never found inside `$10::`.
        for (index, literal) in literals.enumerated().reversed() {
            let placeholder = "$\(index + 1)::"
            guard tail.ranges(of: placeholder).count == 1, let range = tail.range(of: placeholder) else { return nil }
            tail.replaceSubrange(range, with: literal + "::")
        }
        return sql[..<close.upperBound] + tail
    }

    /// How the wrapper ends the user's query; its own predicates follow.
    private static let userQueryEnd = "\n) AS etl_source\nWHERE "
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
