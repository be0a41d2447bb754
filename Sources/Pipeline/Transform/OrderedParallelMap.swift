import Foundation

/// Runs a blocking transform on dedicated worker threads (never Swift's cooperative pool: FFmpeg and libpq calls
/// block) and hands results back in submission order, so the same input always gives byte-identical shards.
///
/// Work moves between threads in batches, never item by item: a producer submits a batch, one worker transforms
/// all of it, and the consumer takes the whole result batch under one lock and then hands out its items without
/// locking. With rows of a few hundred bytes, one lock round trip (and the futex calls of waking a thread) per row
/// cost more than the row's own work; per batch they vanish. The producer decides the batch size (large items come
/// one per batch, so media still spreads over every worker).
///
/// At most `window` batches are in flight between `submit` and `next`, which bounds memory whatever the source
/// size: a producer faster than the workers or the consumer blocks in `submit`.
///
/// Threads: any number of producers may submit (in the order they want the results), one consumer calls `next`.
/// Each kind of waiter has a condition of its own and is woken only when what it waits for may have happened (a
/// worker when a batch comes in, the consumer when the batch it needs is done, a producer when a slot frees): one
/// broadcast waking every thread at every step costs a futex call and a context switch per thread, which at small
/// rows was a tenth of the run's CPU.
final class OrderedParallelMap<Input: Sendable, Output: Sendable>: @unchecked Sendable {
    struct Cancelled: Error {}

    private let monitor = Monitor()
    private let transform: @Sendable (Input) -> Output
    private let window: Int
    /// Submitted, not yet started; keys run contiguously from `nextToStart`. A dictionary, so a started batch's
    /// inputs are released at once (their bytes can be large).
    private var pending: [Int: [Input]] = [:]
    private var nextToStart = 0
    private var results: [Int: [Output]] = [:]
    private var nextToAssign = 0
    private var nextToDeliver = 0
    private var inputFinished = false
    private var cancelled = false
    private var threads: [Thread] = []
    private var runningWorkers = 0

    /// The consumer's current batch, last item first (workers build it that way), so that `popLast` hands out
    /// items in order and releases each one as it goes. Touched by the consumer thread only, without the lock.
    private var delivering: [Output] = []

    init(workers: Int, window: Int, transform: @escaping @Sendable (Input) -> Output) {
        precondition(workers >= 1, "a parallel map needs at least one worker")
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

    /// One item as a batch of its own.
    func submit(_ input: Input) throws(Cancelled) {
        try submit(batch: [input])
    }

    /// Blocks while the window is full. Throws `Cancelled` once the consumer gave up, so the producer stops reading.
    func submit(batch: [Input]) throws(Cancelled) {
        guard !batch.isEmpty else { return }
        monitor.lock()
        defer { monitor.unlock() }
        while nextToAssign - nextToDeliver >= window && !cancelled { monitor.wait(.space) }
        if cancelled { throw Cancelled() }
        pending[nextToAssign] = batch
        nextToAssign += 1
        monitor.signal(.input)
    }

    /// No more input: `next` returns nil after the last result.
    func finish() {
        monitor.lock()
        inputFinished = true
        monitor.broadcastAll()
        monitor.unlock()
    }

    /// Stops everything: workers exit after their current batch, `submit` throws, `next` returns nil once the batch
    /// the consumer already holds is used up.
    func cancel() {
        monitor.lock()
        cancelled = true
        monitor.broadcastAll()
        monitor.unlock()
    }

    /// The next result in submission order; nil when input is finished and all were delivered, or on cancel.
    func next() -> Output? {
        if let output = delivering.popLast() { return output }
        guard let batch = nextReversedBatch() else { return nil }
        delivering = batch
        return delivering.popLast()
    }

    /// The next whole batch of results, in submission order; nil at the end or on cancel.
    func nextBatch() -> [Output]? {
        precondition(delivering.isEmpty, "nextBatch would skip the items next() has not handed out yet")
        return nextReversedBatch()?.reversed()
    }

    private func nextReversedBatch() -> [Output]? {
        monitor.lock()
        defer { monitor.unlock() }
        while true {
            if cancelled { return nil }
            if let batch = results.removeValue(forKey: nextToDeliver) {
                nextToDeliver += 1
                monitor.broadcast(.space)
                return batch
            }
            if inputFinished && nextToDeliver == nextToAssign { return nil }
            monitor.wait(.result)
        }
    }

    /// Whether `cancel` was called: a producer waiting for something else (memory for a large value) stops too.
    var isCancelled: Bool {
        monitor.lock()
        defer { monitor.unlock() }
        return cancelled
    }

    /// Batches submitted and not yet taken by the consumer (never more than the window); for tests and metrics.
    var inFlightBatches: Int {
        monitor.lock()
        defer { monitor.unlock() }
        return nextToAssign - nextToDeliver
    }

    /// Waits for the workers to exit; call after finish or cancel.
    func join() {
        monitor.lock()
        inputFinished = true
        monitor.broadcastAll()
        while runningWorkers > 0 { monitor.wait(.exit) }
        monitor.unlock()
    }

    private func workerLoop() {
        while true {
            monitor.lock()
            while nextToStart == nextToAssign && !inputFinished && !cancelled { monitor.wait(.input) }
            if cancelled || nextToStart == nextToAssign {
                runningWorkers -= 1
                monitor.broadcast(.exit)
                monitor.unlock()
                return
            }
            let sequence = nextToStart
            var inputs = pending.removeValue(forKey: sequence)!
            nextToStart += 1
            monitor.unlock()

            // Last input first: each input is released as soon as it is transformed (a batch never holds both forms
            // of a large item longer than its own transform does), and the outputs come out last first, which is
            // the order the consumer pops them in. Nothing is reversed or copied on either side.
            var outputs: [Output] = []
            outputs.reserveCapacity(inputs.count)
            while let input = inputs.popLast() {
                outputs.append(transform(input))
            }

            monitor.lock()
            results[sequence] = outputs
            // The consumer waits for one batch only: the next in order.
            if sequence == nextToDeliver { monitor.signal(.result) }
            monitor.unlock()
        }
    }
}

/// One mutex with a condition per kind of waiter (Foundation's NSCondition has one condition per lock).
private final class Monitor: @unchecked Sendable {
    enum Waiter: Int, CaseIterable { case space, input, result, exit }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let conditions = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: Waiter.allCases.count)

    init() {
        pthread_mutex_init(mutex, nil)
        for index in Waiter.allCases.indices { pthread_cond_init(conditions + index, nil) }
    }

    deinit {
        for index in Waiter.allCases.indices { pthread_cond_destroy(conditions + index) }
        pthread_mutex_destroy(mutex)
        conditions.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits (the mutex held) until woken for `waiter`; callers re-check their condition in a loop.
    func wait(_ waiter: Waiter) { pthread_cond_wait(conditions + waiter.rawValue, mutex) }
    func signal(_ waiter: Waiter) { pthread_cond_signal(conditions + waiter.rawValue) }
    func broadcast(_ waiter: Waiter) { pthread_cond_broadcast(conditions + waiter.rawValue) }
    func broadcastAll() { for waiter in Waiter.allCases { broadcast(waiter) } }
}
