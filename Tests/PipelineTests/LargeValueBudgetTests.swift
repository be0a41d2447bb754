import Foundation
import Testing
@testable import Pipeline

/// The reader's budget of assembled large values: a value that does not fit waits for the ones before it to be freed.
@Suite struct LargeValueBudgetTests {
    @Test func aValueWaitsUntilTheOneBeforeIsFreedUnlessBothFit() {
        let budget = LargeValueBudget(limit: 100)
        #expect(budget.reserve(60) && budget.reserve(40), "both fit")
        budget.release(40)
        let reserved = Flag()
        let waiter = Thread {
            _ = budget.reserve(70)  // 60 + 70 > 100: waits for the 60
            reserved.set()
        }
        waiter.start()
        usleep(200_000)
        #expect(!reserved.isSet, "still waiting while 60 are held")
        budget.release(60)
        let deadline = Date().addingTimeInterval(5)
        while !reserved.isSet && Date() < deadline { usleep(10_000) }
        #expect(reserved.isSet && budget.inUse == 70)
        // Larger than the whole budget: goes through when nothing else is held.
        budget.release(70)
        #expect(budget.reserve(500) && budget.inUse == 500)
    }

    @Test func aWaitingReaderStopsWhenTheRunStops() {
        let stop = Flag()
        let budget = LargeValueBudget(limit: 100, shouldStop: { stop.isSet })
        #expect(budget.reserve(80))
        stop.set()
        #expect(!budget.reserve(80), "gives up instead of waiting for memory nobody will free")
        #expect(budget.inUse == 80)
    }
}

private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
