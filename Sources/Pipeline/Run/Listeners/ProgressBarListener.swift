import Foundation

/// A live one-line progress bar for a terminal (stderr is a TTY): each `.progress` event redraws the line in place
/// (`\r` + the line + erase-to-end-of-line), and the run's end leaves the final figures on their own line. With
/// PostgreSQL's row estimate (`.planned`) it shows a bar and an ETA; without one, just the rates.
public final class ProgressBarListener: RunListener, @unchecked Sendable {
    private let write: @Sendable (String) -> Void
    private let width: Int
    private let lock = NSLock()
    private var estimatedRows: Int?
    private var drawn = false

    /// `width`: the terminal's columns (the line is cut to fit, so it never wraps and breaks `\r`).
    public init(width: Int = 80, write: @escaping @Sendable (String) -> Void) {
        self.width = max(40, width)
        self.write = write
    }

    public func handle(_ event: RunEvent) {
        lock.withLock {
            switch event {
            case .planned(let estimate):
                estimatedRows = estimate
            case .progress(let progress):
                write("\r" + Self.line(progress, estimatedRows: estimatedRows, width: width) + "\u{1B}[K")
                drawn = true
            case .notice(let text):
                // Above the bar, which is redrawn by the next progress event.
                write((drawn ? "\r\u{1B}[K" : "") + "etl: \(text)\n")
            case .finished:
                if drawn { write("\n") }
                drawn = false
            case .started, .quarantined, .shardSealed:
                break
            }
        }
    }

    /// One line (pure): `[#####-----]  52% 1,234/2,380 rows  3.1 MB/s  410 rows/s  1,200 samples  34 quarantined  ETA 0:03`.
    public static func line(_ progress: RunProgress, estimatedRows: Int?, width: Int) -> String {
        let seconds = max(progress.elapsedSeconds, 0.001)
        let rowsPerSecond = Double(progress.rowsRead) / seconds
        let megabytesPerSecond = Double(progress.sourceBytes) / 1e6 / seconds
        var parts: [String] = []
        // PostgreSQL's estimate can be low; past it, the bar stays full and the ETA unknown rather than negative.
        if let estimate = estimatedRows, estimate > 0 {
            let fraction = min(1, Double(progress.rowsRead) / Double(estimate))
            let cells = 20
            let filled = Int((fraction * Double(cells)).rounded(.down))
            parts.append("[" + String(repeating: "#", count: filled) + String(repeating: "-", count: cells - filled) + "]")
            parts.append(String(format: "%3.0f%%", fraction * 100))
            parts.append("\(grouped(progress.rowsRead))/~\(grouped(estimate)) rows")
        } else {
            parts.append("\(grouped(progress.rowsRead)) rows")
        }
        parts.append(String(format: "%.1f MB/s", megabytesPerSecond))
        parts.append("\(grouped(Int(rowsPerSecond.rounded()))) rows/s")
        parts.append("\(grouped(progress.samplesWritten)) samples")
        parts.append("\(grouped(progress.quarantined)) quarantined")
        if let estimate = estimatedRows, estimate > progress.rowsRead, rowsPerSecond > 0 {
            parts.append("ETA " + clock(Double(estimate - progress.rowsRead) / rowsPerSecond))
        } else {
            parts.append("elapsed " + clock(progress.elapsedSeconds))
        }
        let text = "etl: " + parts.joined(separator: "  ")
        return text.count <= width - 1 ? text : String(text.prefix(width - 1))
    }

    /// 1234567 → "1,234,567".
    static func grouped(_ number: Int) -> String {
        let digits = String(abs(number))
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return number < 0 ? "-" + out : out
    }

    /// Seconds as `m:ss`, or `h:mm:ss` from an hour.
    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        let (hours, minutes, secs) = (total / 3600, total / 60 % 60, total % 60)
        return hours > 0 ? String(format: "%d:%02d:%02d", hours, minutes, secs) : String(format: "%d:%02d", minutes, secs)
    }
}
