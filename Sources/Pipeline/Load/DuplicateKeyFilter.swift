/// Finds keys that a query returns more than once (a join that fans out). Rows arrive ordered by (cursor, key), so a
/// repeat is always adjacent to its first occurrence: comparing with the previous row finds every one in O(1)
/// memory. The first row of a key is kept; the repeats are quarantined as `duplicate_key`.
struct DuplicateKeyFilter<Key: Equatable, Cursor: Equatable> {
    private var last: (key: Key, cursor: Cursor)?

    /// Whether this row repeats the previous sample's key and cursor. Call for every row that would become a sample.
    mutating func isRepeat(key: Key, cursor: Cursor) -> Bool {
        if let last, last.key == key, last.cursor == cursor { return true }
        last = (key, cursor)
        return false
    }
}
