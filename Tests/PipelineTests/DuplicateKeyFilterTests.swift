@testable import Pipeline
import Testing

@Suite struct DuplicateKeyFilterTests {
    @Test func repeatsOfTheSameKeyAndCursorAreFoundAndTheFirstIsKept() {
        var filter = DuplicateKeyFilter<String?, Int>()
        let rows: [(String?, Int)] = [("1", 1), ("1", 1), ("2", 1), ("2", 2), ("2", 2), ("2", 2), ("3", 3), (nil, 4), (nil, 4)]
        let repeats = rows.map { filter.isRepeat(key: $0.0, cursor: $0.1) }
        #expect(repeats == [false, true, false, false, true, true, false, false, true])
    }

    @Test func theSameKeyUnderAnotherCursorIsNotARepeat() {
        // A key whose row was updated (a timestamp cursor) appears again with a new cursor: a new version of the row.
        var filter = DuplicateKeyFilter<String, String>()
        let repeats = [("7", "2026-01-01"), ("7", "2026-01-02"), ("7", "2026-01-02")].map { filter.isRepeat(key: $0.0, cursor: $0.1) }
        #expect(repeats == [false, false, true])
    }
}
