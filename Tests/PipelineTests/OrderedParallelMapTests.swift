import Foundation
@testable import Pipeline
import Testing

@Suite struct OrderedParallelMapTests {
    /// Batches of random sizes, workers taking random times: results still come back in submission order, and the
    /// producer never gets more than `window` batches ahead of the consumer.
    @Test func keepsOrderUnderRandomDelaysAndRespectsTheWindow() {
        let window = 5
        let map = OrderedParallelMap<Int, Int>(workers: 3, window: window) { value in
            usleep(UInt32.random(in: 0...300))
            return value * 2
        }
        nonisolated(unsafe) var largestInFlight = 0
        let producer = Thread {
            var next = 0
            while next < 3000 {
                let size = Int.random(in: 1...40)
                try? map.submit(batch: Array(next..<min(next + size, 3000)))
                largestInFlight = max(largestInFlight, map.inFlightBatches)
                next += size
            }
            map.finish()
        }
        producer.start()
        var results: [Int] = []
        while let value = map.next() {
            results.append(value)
            if results.count % 97 == 0 { usleep(500) }  // a consumer slower than the workers at times
        }
        map.join()
        #expect(results == (0..<3000).map { $0 * 2 })
        #expect(largestInFlight <= window)
        #expect(largestInFlight >= 1)
    }

    /// With nobody consuming, the producer blocks once `window` batches are in flight, and goes on as soon as the
    /// consumer takes one.
    @Test func aFullWindowBlocksTheProducerUntilTheConsumerTakesABatch() {
        let map = OrderedParallelMap<Int, Int>(workers: 2, window: 3) { $0 }
        for i in 0..<3 { try? map.submit(batch: [i, i + 100]) }
        let fourthSubmitted = DispatchSemaphore(value: 0)
        Thread {
            try? map.submit(batch: [3])
            fourthSubmitted.signal()
        }.start()
        #expect(fourthSubmitted.wait(timeout: .now() + 0.3) == .timedOut)
        #expect(map.next() == 0)
        #expect(fourthSubmitted.wait(timeout: .now() + 5) == .success)
        map.finish()
        var rest: [Int] = []
        while let value = map.next() { rest.append(value) }
        map.join()
        #expect(rest == [100, 1, 101, 2, 102, 3])
    }

    @Test func wholeBatchesComeBackInOrder() {
        let map = OrderedParallelMap<String, Int>(workers: 2, window: 4) { $0.count }
        Thread {
            try? map.submit(batch: ["a", "bb"])
            try? map.submit(batch: ["ccc"])
            map.finish()
        }.start()
        #expect(map.nextBatch() == [1, 2])
        #expect(map.nextBatch() == [3])
        #expect(map.nextBatch() == nil)
        map.join()
    }

    @Test func finishingWithoutAnyItemEndsAtOnce() {
        let map = OrderedParallelMap<Int, Int>(workers: 2, window: 4) { $0 }
        try? map.submit(batch: [])
        map.finish()
        #expect(map.next() == nil)
        map.join()
        #expect(map.inFlightBatches == 0)
    }

    @Test func cancelStopsTheProducerAndTheConsumer() {
        let map = OrderedParallelMap<Int, Int>(workers: 2, window: 4) { $0 }
        let stopped = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var submitted = 0
        nonisolated(unsafe) var sawCancelled = false
        let producer = Thread {
            do {
                for i in 0..<1_000_000 { try map.submit(batch: [i, i]); submitted += 1 }
            } catch {
                sawCancelled = true
            }
            stopped.signal()
        }
        producer.start()
        #expect(map.next() == 0)
        #expect(map.next() == 0)
        map.cancel()
        #expect(stopped.wait(timeout: .now() + 5) == .success)
        #expect(sawCancelled)
        #expect(submitted < 1_000_000)
        #expect(map.next() == nil, "after cancel, nothing more is delivered")
        map.join()
    }
}
