import Foundation

/// Points where tests that race or kill real `etl` processes can hold a run (environment variables; never set them in
/// production). `ETL_TEST_SKIP_LOCK=1` skips the dataset lock, so two runs reach the store's compare-and-swap commit
/// together; `ETL_TEST_PAUSE_<POINT>=<file>` makes a run create `<file>.ready.<pid>` at that point and wait (60 s at
/// most) until `<file>` exists.
enum TestHooks {
    private static let environment = ProcessInfo.processInfo.environment

    static var skipLock: Bool { environment["ETL_TEST_SKIP_LOCK"] == "1" }

    enum Point: String {
        case beforeCommit = "BEFORE_COMMIT"
        case afterCheckpoint = "AFTER_CHECKPOINT"
    }

    static func pause(at point: Point) {
        guard let gate = environment["ETL_TEST_PAUSE_\(point.rawValue)"], !gate.isEmpty else { return }
        FileManager.default.createFile(atPath: "\(gate).ready.\(getpid())", contents: nil)
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: gate) && Date() < deadline { usleep(20_000) }
    }
}
