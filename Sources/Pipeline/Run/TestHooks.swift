import Foundation
import Postgres

/// Points where tests that race, kill or disturb real `etl` processes can hold a run (environment variables; never set
/// them in production). `ETL_TEST_SKIP_LOCK=1` skips the dataset lock, so two runs reach the store's compare-and-swap
/// commit together; `ETL_TEST_PAUSE_<POINT>=<file>` makes a run create `<file>.ready.<pid>` at that point and wait
/// (60 s at most) until `<file>` exists. `ETL_TEST_PAUSE_<POINT>_AT=<n>` holds it only from the n-th time the point is
/// passed (default 1), so a test can stop a run in the middle of its rows; for `TRANSFORM`, whose rows run on several
/// workers in batches, it names the key of the row to hold at instead (a count would stop whichever worker got there).
enum TestHooks {
    private static let environment = ProcessInfo.processInfo.environment

    /// ETL_TEST_DIRECT_ENCODING=0 sends plain columns through the row path too (`DirectSampleEncoder`), so a test can
    /// compare both paths' shards.
    static var directEncoding: Bool { environment["ETL_TEST_DIRECT_ENCODING"] != "0" }
    static var skipLock: Bool { environment["ETL_TEST_SKIP_LOCK"] == "1" }

    /// `ETL_TEST_LARGE_VALUE_BUDGET=<bytes>`: how many bytes of assembled large values may be alive at once (64 MiB by
    /// default), for the bench's A/B of holding one at a time.
    static var largeValueBudget: Int {
        environment["ETL_TEST_LARGE_VALUE_BUDGET"].flatMap { Int($0) } ?? 64 << 20
    }

    /// `ETL_TEST_BYTEA_CHUNK=<bytes>`: the chunk size of large bytea values in the COPY stream (0 sends every value
    /// whole, as before chunking), for tests of small chunks and the bench's A/B of the two.
    static var byteaChunking: ByteaChunking? {
        guard let text = environment["ETL_TEST_BYTEA_CHUNK"], let bytes = Int(text) else { return ByteaChunking() }
        return bytes > 0 ? ByteaChunking(chunkSize: bytes) : nil
    }

    enum Point: String, CaseIterable {
        /// Right before the compare-and-swap commit: every shard sealed, indexes and manifest staged.
        case beforeCommit = "BEFORE_COMMIT"
        /// Right after a checkpoint is on disk.
        case afterCheckpoint = "AFTER_CHECKPOINT"
        /// In the extract thread, after a batch of source rows is handed over; counted in rows fetched.
        case extract = "EXTRACT"
        /// In a transform worker, before it processes the row whose key `_AT` names.
        case transform = "TRANSFORM"
        /// In the load stage, after a sample is written into an open (unsealed) shard; counted in samples.
        case shardWrite = "SHARD_WRITE"
        /// After the last shards are sealed and the final checkpoint written, before the version is assembled.
        case afterSeal = "AFTER_SEAL"
    }

    /// Read once: the per-row points are passed millions of times and must cost one load when unset.
    private static let gates: [Point: (file: String, at: String?)] = {
        var gates: [Point: (file: String, at: String?)] = [:]
        for point in Point.allCases {
            guard let file = environment["ETL_TEST_PAUSE_\(point.rawValue)"], !file.isEmpty else { continue }
            gates[point] = (file, environment["ETL_TEST_PAUSE_\(point.rawValue)_AT"])
        }
        return gates
    }()
    private static let counts = Counts()

    /// Passes `point` `times` more times (e.g. a batch of rows); holds the run if that reaches the point's threshold.
    static func pause(at point: Point, times: Int = 1) {
        guard !gates.isEmpty, let gate = gates[point] else { return }
        guard counts.add(times, to: point) >= gate.at.flatMap({ Int($0) }) ?? 1 else { return }
        hold(gate.file)
    }

    /// Holds the run at `point` when `key` (computed only when the point is armed) is the key it names.
    static func pause(at point: Point, key: () -> String?) {
        guard !gates.isEmpty, let gate = gates[point], let at = gate.at, key() == at else { return }
        hold(gate.file)
    }

    private static func hold(_ file: String) {
        _ = FileManager.default.createFile(atPath: "\(file).ready.\(getpid())", contents: nil)
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: file) && Date() < deadline { usleep(20_000) }
    }

    /// How many times each point was passed, from any thread (transform workers run in parallel).
    private final class Counts: @unchecked Sendable {
        private let lock = NSLock()
        private var counts: [Point: Int] = [:]
        func add(_ n: Int, to point: Point) -> Int {
            lock.withLock {
                counts[point, default: 0] += n
                return counts[point]!
            }
        }
    }
}
