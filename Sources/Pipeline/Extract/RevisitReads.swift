import Postgres

/// The statements a run streams when it re-reads below the previous version's cursor (see RevisitPlan). The re-read
/// window (after, top] of a busy table is mostly rows a version already holds, and their payload may be a clip: so
/// the window is first looked at keys only — (cursor, key) pairs, no payload — and only the rows of keys no version
/// holds are fetched in full, before everything after `top`. Both reads are in the run's one snapshot and in the
/// stable (cursor, key) order, so the rows come exactly as one statement over (after, ∞) would give them, minus the
/// already-published ones. The map still checks every row against the window (a key published with another cursor).
struct RevisitReads {
    var statements: [SourceReader.Statement]
    /// Rows of the window that versions already hold, dropped before their payload was fetched.
    var alreadyPublished = 0
    /// What the keys-only look fetched (approximate decoded bytes).
    var keyBytes = 0

    /// One partition of a planned run: the rows up to `through` (the plan's read_through) whose key hashes to `index`.
    struct Partition {
        var index: Int
        var count: Int
        var through: String
    }

    /// `after`: where the run reads from; `top` and `window`: the parent's cursor.to and the published rows below it.
    /// `partition`: a partition's reads, the same looks restricted to its share of the plan's range.
    static func plan(source: PreparedSource, after: String?, top: String?, window: PublishedWindow?,
                     partition: Partition? = nil) throws -> RevisitReads {
        let type = source.plan.cursorType
        // Everything after `from` (to the partition's end): without a window, or for the rows above it.
        func rest(after from: String?) throws -> SourceReader.Statement {
            guard let partition else { return .init(sql: source.sql(after: from), parameters: from.map { [$0] } ?? []) }
            return .init(sql: source.query.partitionSQL(
                selecting: source.plan.selectedColumns, cursorType: type,
                afterLiteral: try from.map { value throws(PostgresError) in try source.connection.escapeLiteral(value) },
                throughLiteral: try source.connection.escapeLiteral(partition.through), partition: partition.index, of: partition.count),
                parameters: [])
        }
        let everything = RevisitReads(statements: [try rest(after: after)])
        guard let window, var top else { return everything }
        // A resumed run may start at or above the window's top already.
        if let after, let point = try SourceSnapshot.point(after, type: type, on: source.connection), point >= window.top {
            return everything
        }
        // A partition reads no further than the plan's range, which may end inside the window.
        var above = true
        if let partition, let through = try SourceSnapshot.point(partition.through, type: type, on: source.connection),
           through <= window.top {
            top = partition.through
            above = false
        }
        let scope = partition.map { (index: $0.index, count: $0.count) }
        let bounds: [String?] = (after.map { [$0] } ?? []) + [top]
        let keys = try source.connection.query(
            source.query.windowSQL(selecting: [], cursorType: type, fromStart: after == nil, keysOnly: true, partition: scope), bounds)
        var reads = RevisitReads(statements: [])
        var unpublished: [String] = []
        for row in keys.rows {
            reads.keyBytes += row.values.reduce(0) { $0 + $1.approximateSize }
            if window.holds(cursor: row.values[0], key: row.values[1]) {
                reads.alreadyPublished += 1
            } else if case .text(let key) = row.values[2] {
                unpublished.append(key)
            } else {
                // A NULL key cannot be picked out by value: read the window whole, as without this look.
                return everything
            }
        }
        if !unpublished.isEmpty {
            reads.statements.append(.init(
                sql: source.query.windowSQL(selecting: source.plan.selectedColumns, cursorType: type, fromStart: after == nil, keysOnly: false),
                parameters: bounds + [postgresTextArray(unpublished)]))
        }
        if above { reads.statements.append(try rest(after: top)) }
        return reads
    }
}
