import Foundation
import Pipeline

/// The run's events as lines a person reads on stderr: notices and progress while it goes. The summary of a
/// published version goes to stdout (RunCommand), so scripts can capture it.
struct ConsoleListener: RunListener {
    let quiet: Bool

    func handle(_ event: RunEvent) {
        guard !quiet else { return }
        switch event {
        case .notice(let text):
            printError("etl: \(text)")
        case .progress(let progress):
            // A run of a few seconds needs no progress line; a long nightly one shows it is alive.
            guard progress.elapsedSeconds >= 5 else { return }
            let mb = Double(progress.sourceBytes) / 1e6
            printError(String(format: "etl: %d rows, %.1f MB read, %.1f MB/s", progress.rowsRead, mb, mb / max(progress.elapsedSeconds, 0.001)))
        case .started, .planned, .quarantined, .shardSealed, .finished:
            break
        }
    }
}
