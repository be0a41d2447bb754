import Dataset
import Postgres

/// The rows a run re-reads below the previous version's cursor that versions already hold: (cursor, key) pairs with
/// cursor in (after, top], loaded from the candidate versions' rows.bin. Immutable once built, so worker threads
/// consult it before transforming a row (an already-published clip is not decoded again).
struct PublishedWindow: Sendable {
    let top: CursorPoint
    let rows: Set<PublishedRow>
    let cursorIndex: Int
    let keyIndex: Int

    /// Loads the rows with cursor in (after, top] from each file.
    init(files: [String], after: CursorPoint?, top: CursorPoint, cursorIndex: Int, keyIndex: Int) throws {
        var rows = Set<PublishedRow>()
        for file in files {
            try PublishedRowsFile.forEach(file) { row in
                if row.cursor <= top, after.map({ row.cursor > $0 }) ?? true { rows.insert(row) }
            }
        }
        self.top = top
        self.rows = rows
        self.cursorIndex = cursorIndex
        self.keyIndex = keyIndex
    }

    func holds(_ row: PostgresRow) -> Bool {
        holds(cursor: row.values[cursorIndex], key: row.values[keyIndex])
    }

    func holds(cursor: PostgresValue, key: PostgresValue) -> Bool {
        guard let point = CursorPoint(cursor), point <= top else { return false }
        return rows.contains(PublishedRow(cursor: point, key: key.textForParameter))
    }
}
