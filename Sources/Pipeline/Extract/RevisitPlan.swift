import Dataset

/// Where an incremental run starts reading, so that no committed row is skipped and none is published twice.
///
/// A cursor value (a bigserial id, a `now()` timestamp) is taken when a transaction inserts or starts, not when it
/// commits; with concurrent writers a row with a lower cursor can become visible after a run has read past it. The rows
/// the parent version could not see are those of transactions invisible to its snapshot. Each of them began at or
/// after the parent's `oldest_transaction_start` (or, where that is unknown, had no transaction id below the
/// snapshot's xmin), so its rows lie above the cursor of every earlier version taken before that. This run re-reads
/// from there and skips the rows a version already holds (each version's rows.bin lists its (cursor, key) pairs).
/// Pure, so the rule is tested alone.
struct RevisitPlan: Equatable {
    /// Rows with cursor > `after` are read; nil reads from the start.
    var after: String?
    /// Rows with cursor ≤ the parent's `cursor.to` are checked against the rows.bin of these versions (newest first).
    var publishedIn: [String]
    /// Why the window is what it is, when an operator should know.
    var notice: String?

    /// `history`: the retained versions, newest (the parent) first.
    static func plan(history: [DatasetManifest]) -> RevisitPlan {
        guard let parent = history.first else { return RevisitPlan(after: nil, publishedIn: [], notice: nil) }
        guard let reference = parent.source, parent.rowsFile != nil else {
            return RevisitPlan(after: parent.cursor.to, publishedIn: [], notice: "\(parent.version) records no source snapshot (written by an older etl): rows committed late below its cursor cannot be looked for; from the next run on they are")
        }
        var candidates: [String] = []
        for manifest in history {
            guard let earlier = manifest.source, manifest.rowsFile != nil else {
                let last = history[candidates.count - 1]
                return RevisitPlan(after: last.cursor.from, publishedIn: candidates,
                                   notice: "versions before \(last.version) record no source snapshot; late commits are looked for back to \(last.version) only")
            }
            if let oldest = reference.oldestTransactionStart {
                // Transactions that began after `earlier` was taken allocate cursors above its cursor.to.
                if earlier.takenAt <= oldest {
                    return RevisitPlan(after: manifest.cursor.to, publishedIn: candidates, notice: nil)
                }
            } else if earlier.xmax <= reference.xmin {
                // No transaction the parent could not see had an id when `earlier` was taken, so none had inserted
                // (an insert takes its id in the statement that takes its sequence value or clock): its rows are above
                // `earlier`'s cursor.from — one run back, to leave room for the instant between the two.
                return RevisitPlan(after: manifest.cursor.from ?? manifest.cursor.to, publishedIn: candidates + [manifest.version], notice: nil)
            }
            candidates.append(manifest.version)
        }
        let oldest = history.last!
        return RevisitPlan(after: oldest.cursor.from, publishedIn: candidates,
                           notice: oldest.cursor.from == nil ? nil
                               : "a transaction open on the source when \(parent.version) read predates every retained version; late commits are looked for back to \(oldest.version) only")
    }
}
