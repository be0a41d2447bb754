/// Which partition a source row belongs to: a stable hash of its key, computed by PostgreSQL in the partition's query
/// so only the partition's rows leave the server. `hashtextextended(key::text, 0)` (PostgreSQL ≥ 11) is a 64-bit hash
/// of the key's text that does not change across servers, versions or restarts; its remainder modulo N, made
/// non-negative, is the partition. A NULL key (quarantined as `null_key`) goes to partition 0. A key the query returns
/// twice lands twice in one partition, where duplicate-key detection sees both, as in a single run.
enum PartitionHash {
    /// The SQL expression of the partition number (0 ..< count) for the key expression `key`.
    static func sql(key: String, count: Int) -> String {
        "((COALESCE(hashtextextended((\(key))::text, 0), 0) % \(count) + \(count)) % \(count))"
    }
}

extension SourceQuery {
    /// The statement of one partition: the rows with `after < cursor ≤ through` whose key hashes to `partition`, in
    /// (cursor, key) order, the bounds already escaped literals (binary COPY takes no parameters).
    func partitionSQL(selecting columns: [String], cursorType: String, afterLiteral: String?, throughLiteral: String,
                      partition: Int, of count: Int) -> String {
        let list = columns.map { "etl_source.\(quoteIdentifier($0))" }.joined(separator: ", ")
        let cursor = "etl_source.\(quoteIdentifier(cursorColumn))"
        let key = "etl_source.\(quoteIdentifier(keyColumn))"
        var sql = "SELECT \(list) FROM (\n\(userQuery)\n) AS etl_source\nWHERE \(cursor) IS NOT NULL"
        if let afterLiteral { sql += " AND \(cursor) > \(afterLiteral)::\(cursorType)" }
        sql += " AND \(cursor) <= \(throughLiteral)::\(cursorType)"
        if count > 1 { sql += " AND \(PartitionHash.sql(key: key, count: count)) = \(partition)" }
        sql += "\nORDER BY \(cursor), \(key)"
        return sql
    }

    /// The highest cursor value past `after` (a bound parameter) the query returns: the top of a plan's range.
    func maxCursorSQL(after cursorType: String?) -> String {
        let cursor = "etl_source.\(quoteIdentifier(cursorColumn))"
        var sql = "SELECT max(\(cursor)) FROM (\n\(userQuery)\n) AS etl_source\nWHERE \(cursor) IS NOT NULL"
        if let cursorType { sql += " AND \(cursor) > $1::\(cursorType)" }
        return sql
    }
}
