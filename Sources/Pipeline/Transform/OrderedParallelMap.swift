import Foundation

/// Runs a blocking transform on dedicated worker threads (never Swift's cooperative pool: FFmpeg and libpq calls
/// block) and hands results back in submission order, so the same input always gives byte-identical shards.
/// At most `window` items are in flight between `submit` and `next`, which bounds memory whatever the source size:
/// a producer faster than the workers or the consumer blocks in `submit`.
final class OrderedParallelMap<Input: Sendable, Output: Sendable>: @unchecked Sendable {
    struct Cancelled: Error {}

    private let condition = NSCondition()
    private let transform: @Sendable (Input) -> Output
    private let window: Int
    /// Submitted, not yet started; keys run contiguously from `nextToStart`. A dictionary, so a started item's
    /// input is released at once (its bytes can be large).
    private var pending: [Int: Input] = [:]
    private var nextToStart = 0
    private var results: [Int: Output] = [:]
    private var nextToAssign = 0
    private var nextToDeliver = 0
    private var inputFinished = false
    private var cancelled = false
    private var threads: [Thread] = []
    private var runningWorkers = 0

    init(workers: Int, window: Int, transform: @escaping @Sendable (Input) -> Output) {
        self.transform = transform
        self.window = max(window, workers)
        runningWorkers = workers
        for index in 0..<workers {
            let thread = Thread { [unowned self] in self.workerLoop() }
            thread.name = "etl-worker-\(index)"
            thread.stackSize = 8 << 20
            threads.append(thread)
            thread.start()
        }
    }

    /// Blocks while the window is full. Throws `Cancelled` once the consumer gave up, so the producer stops reading.
    func submit(_ input: Input) throws(Cancelled) {
        condition.lock()
        defer { condition.unlock() }
        while nextToAssign - nextToDeliver >= window && !cancelled { condition.wait() }
        if cancelled { throw Cancelled() }
        pending[nextToAssign] = input
        nextToAssign += 1
        condition.broadcast()
    }

    /// No more input: `next` returns nil after the last result.
    func finish() {
        condition.lock()
        inputFinished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Stops everything: workers exit after their current item, `submit` throws, `next` returns nil.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next result in submission order; nil when input is finished and all were delivered, or on cancel.
    func next() -> Output? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if cancelled { return nil }
            if let output = results.removeValue(forKey: nextToDeliver) {
                nextToDeliver += 1
                condition.broadcast()
                return output
            }
            if inputFinished && nextToDeliver == nextToAssign { return nil }
            condition.wait()
        }
    }

    /// Waits for the workers to exit; call after finish or cancel.
    func join() {
        condition.lock()
        inputFinished = true
        condition.broadcast()
        while runningWorkers > 0 { condition.wait() }
        condition.unlock()
    }

    private func workerLoop() {
        while true {
            condition.lock()
            while nextToStart == nextToAssign && !inputFinished && !cancelled { condition.wait() }
            if cancelled || nextToStart == nextToAssign {
                runningWorkers -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let sequence = nextToStart
            let input = pending.removeValue(forKey: sequence)!
            nextToStart += 1
            condition.unlock()

            let output = transform(input)

            condition.lock()
            results[sequence] = output
            condition.broadcast()
            condition.unlock()
        }
    }
}
