import Foundation
import Postgres

/// How many bytes of assembled large values (see `ByteaChunking`) may be alive at once. The reader reserves a row's
/// large values before it allocates them, and each buffer gives its bytes back when it is freed (by whoever drops it
/// last: a transform worker, the shard writer). A value larger than what is free waits until nothing else is held, so
/// a run over many large values holds about one of them at a time (the largest value plus `limit`, not a pipeline's
/// worth).
final class LargeValueBudget: LargeValueReservations, @unchecked Sendable {
    let limit: Int
    private let shouldStop: @Sendable () -> Bool
    private let condition = NSCondition()
    private var held = 0

    /// `shouldStop` is asked while waiting (every 100 ms), so a run that fails elsewhere never waits for memory that
    /// nobody will free.
    init(limit: Int, shouldStop: @escaping @Sendable () -> Bool = { false }) {
        self.limit = limit
        self.shouldStop = shouldStop
    }

    /// Bytes reserved and not yet given back.
    var inUse: Int {
        condition.lock()
        defer { condition.unlock() }
        return held
    }

    func reserve(_ bytes: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while held > 0 && held + bytes > limit {
            if shouldStop() { return false }
            _ = condition.wait(until: Date(timeIntervalSinceNow: 0.1))
        }
        held += bytes
        return true
    }

    func release(_ bytes: Int) {
        condition.lock()
        held -= bytes
        condition.broadcast()
        condition.unlock()
    }
}
