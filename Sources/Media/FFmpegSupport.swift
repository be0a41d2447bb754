internal import CFFmpeg

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How much FFmpeg may print on stderr. The library is quiet by default because the pipeline decodes untrusted media
/// in bulk and reports problems through `MediaError`; FFmpeg's own error lines are still captured into those messages.
public enum MediaLogLevel: Sendable {
    case quiet, error, warning, info, debug
}

extension Media {
    /// Process-wide: FFmpeg has a single log level.
    public static func setLibraryLogLevel(_ level: MediaLogLevel) {
        ffmpegSetUp()
        let value: Int32
        switch level {
        case .quiet: value = AV_LOG_QUIET
        case .error: value = AV_LOG_ERROR
        case .warning: value = AV_LOG_WARNING
        case .info: value = AV_LOG_INFO
        case .debug: value = AV_LOG_DEBUG
        }
        av_log_set_level(value)
    }
}

// MARK: - Logging

/// FFmpeg logs from the thread that called into it (we run every codec with one thread), so a thread-specific
/// capture attaches its error lines to the call that caused them without any sharing between parallel calls.
final class LogCapture {
    private(set) var lines: [String] = []

    func append(_ line: String) {
        if lines.count == 16 { lines.removeFirst() }
        lines.append(line)
    }

    var last: String? { lines.last }

    func contains(_ text: String) -> Bool { lines.contains { $0.contains(text) } }
}

private let logKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

private let setUpOnce: Bool = {
    _ = logKey
    av_log_set_level(AV_LOG_QUIET)
    av_log_set_callback(ffmpegLogCallback)
    return true
}()

/// Idempotent and thread-safe (a Swift global initialiser runs once).
func ffmpegSetUp() {
    _ = setUpOnce
}

private func ffmpegLogCallback(
    _ context: UnsafeMutableRawPointer?, _ rawLevel: Int32, _ format: UnsafePointer<CChar>?, _ args: CVaListPointer?
) {
    let level = rawLevel & 0xff
    let capture = pthread_getspecific(logKey)
    let printed = level <= av_log_get_level()
    guard let args, (capture != nil && level <= AV_LOG_ERROR) || printed else { return }
    var buffer = [CChar](repeating: 0, count: 1024)
    var printPrefix: Int32 = 1
    av_log_format_line2(context, rawLevel, format, args, &buffer, Int32(buffer.count), &printPrefix)
    let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    if let capture, level <= AV_LOG_ERROR {
        let trimmed = line.trimmingTrailingNewlines()
        if !trimmed.isEmpty {
            Unmanaged<LogCapture>.fromOpaque(capture).takeUnretainedValue().append(trimmed)
        }
    }
    if printed {
        // write(2) rather than stdio's shared `stderr` stream, which Swift 6 rightly sees as global mutable state.
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}

extension String {
    fileprivate func trimmingTrailingNewlines() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == "\r" { s = s.dropLast() }
        return String(s)
    }
}

/// Installs a capture for the current thread for the lifetime of the value.
struct LogScope: ~Copyable {
    let capture = LogCapture()
    private let previous: UnsafeMutableRawPointer?

    init() {
        ffmpegSetUp()
        previous = pthread_getspecific(logKey)
        pthread_setspecific(logKey, Unmanaged.passUnretained(capture).toOpaque())
    }

    deinit {
        pthread_setspecific(logKey, previous)
        withExtendedLifetime(capture) {}
    }
}

// MARK: - Errors

let averrorEOF = etl_averror_eof()
let averrorEAGAIN = etl_averror_eagain()
let averrorExit = etl_averror_exit()
let noPTS = etl_nopts_value()

func averrorText(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    if av_strerror(code, &buffer, buffer.count) < 0 {
        return "error \(code)"
    }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension LogCapture {
    /// FFmpeg's last error line, for the end of a `MediaError` message.
    var suffix: String {
        guard let last else { return "" }
        return " (ffmpeg: \(last))"
    }
}

func cString(_ pointer: UnsafePointer<CChar>?) -> String? {
    guard let pointer else { return nil }
    return String(cString: pointer)
}

// MARK: - Time budget

/// The wall-clock deadline of one call. A class because FFmpeg's interrupt callback reaches it through an opaque
/// pointer; each call makes its own.
final class Deadline {
    private let endNanoseconds: UInt64
    let budgetSeconds: Double

    init(seconds: Double) {
        budgetSeconds = seconds
        let budget = seconds.isFinite ? max(0, seconds) : 1e9
        endNanoseconds = Deadline.now() &+ UInt64(min(budget, 1e9) * 1e9)
    }

    var expired: Bool { Deadline.now() >= endNanoseconds }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    func check(_ doing: @autoclosure () -> String) throws(MediaError) {
        if expired {
            throw MediaError(.timeout, "decode time budget of \(budgetSeconds) s exhausted while \(doing())")
        }
    }
}

func interruptCallback(_ opaque: UnsafeMutableRawPointer?) -> Int32 {
    guard let opaque else { return 0 }
    return Unmanaged<Deadline>.fromOpaque(opaque).takeUnretainedValue().expired ? 1 : 0
}

// MARK: - Small conversions

func q2d(_ q: AVRational) -> Double {
    q.den == 0 ? 0 : Double(q.num) / Double(q.den)
}
