import Foundation
import Media
import Testing

/// Every audio codec in every container ffmpeg muxes it into, decoded by us and by the ffmpeg CLI
/// (`ffmpeg -i FILE -ac 1 -ar 16000 -f s16le -`) from the same file, compared sample by sample.
///
/// The signal is a 2 s linear sine sweep (200 → 1800 Hz): a lost or repeated sample anywhere shifts everything after
/// it, which a sweep turns into a large waveform difference (a steady tone would hide shifts of whole periods).
/// Matroska, WebM and FLV store timestamps in milliseconds, coarser than a sample; those are the cases that once lost
/// ~10 samples at every AAC packet boundary and 24 samples of the first Opus packet.
@Suite struct AudioMatrixTests {
    struct Codec: Sendable, CustomStringConvertible {
        var name: String
        var encoder: [String]
        var description: String { name }
    }

    struct Container: Sendable, CustomStringConvertible {
        var name: String
        var ext: String
        var description: String { name }
    }

    static let codecs = [
        Codec(name: "aac", encoder: ["-c:a", "aac"]),
        Codec(name: "mp3", encoder: ["-c:a", "libmp3lame"]),
        Codec(name: "opus", encoder: ["-c:a", "libopus"]),
        Codec(name: "vorbis", encoder: ["-c:a", "libvorbis"]),
        Codec(name: "flac", encoder: ["-c:a", "flac"]),
        Codec(name: "pcm_s16le", encoder: ["-c:a", "pcm_s16le"]),
    ]

    static let containers = [
        Container(name: "mp4", ext: "mp4"), Container(name: "matroska", ext: "mkv"), Container(name: "webm", ext: "webm"),
        Container(name: "flv", ext: "flv"), Container(name: "mpegts", ext: "ts"), Container(name: "ogg", ext: "ogg"),
        Container(name: "wav", ext: "wav"),
    ]

    /// Combinations ffmpeg 5.1's muxers refuse (checked below, so the list cannot go stale silently).
    static let refused: Set<String> = [
        "aac/webm", "aac/ogg", "mp3/webm", "mp3/ogg", "opus/flv", "opus/wav", "vorbis/flv",
        "flac/mp4",  // "experimental, add -strict -2"
        "flac/webm", "flac/flv", "pcm_s16le/mp4", "pcm_s16le/webm", "pcm_s16le/ogg",
    ]

    /// Combinations ffmpeg writes but cannot read back itself (no stream type or tag the demuxer maps to the codec):
    /// there is no reference to compare with, so they are checked to stay unreadable by the CLI, not compared.
    static let unreadable: Set<String> = [
        "aac/wav", "vorbis/mpegts", "vorbis/wav", "flac/mpegts", "pcm_s16le/mpegts",
    ]

    static let signal = "aevalsrc=0.5*sin(2*PI*(200*t+400*t*t)):s=44100:d=2"
    static let rate = 16000
    static let expected = 2 * rate

    static func fixture(_ codec: Codec, _ container: Container) throws -> String? {
        let name = "sweep-\(codec.name).\(container.ext)"
        let key = "\(codec.name)/\(container.name)"
        do {
            return try fixtures.makeOrFail(name, ["-f", "lavfi", "-i", signal] + codec.encoder + ["-f", container.name])
        } catch {
            #expect(refused.contains(key), "ffmpeg refused \(key), which is not listed as refused: \(error)")
            return nil
        }
    }

    static func ffmpegPCM(_ path: String) throws -> [Int16] {
        let data = try run("ffmpeg", ["-nostdin", "-v", "quiet", "-i", path, "-ac", "1", "-ar", "\(rate)", "-f", "s16le", "-"])
        return data.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }.map { Int16(littleEndian: $0) }
    }

    /// The first decoded audio frame's time (of the first 8 packets: some codecs need one to prime) relative to the container start, as ffprobe reports them (a negative
    /// container start counts as 0, as in `TimeWindow`).
    static func firstFrameSeconds(_ path: String) throws -> Double {
        let text = String(decoding: try run("ffprobe", [
            "-v", "error", "-select_streams", "a:0", "-read_intervals", "%+#8", "-show_entries",
            "frame=best_effort_timestamp_time:format=start_time", "-of", "default=noprint_wrappers=1", path,
        ]), as: UTF8.self)
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2, values[String(parts[0])] == nil { values[String(parts[0])] = Double(parts[1]) }
        }
        return (values["best_effort_timestamp_time"] ?? 0) - max(0, values["start_time"] ?? 0)
    }

    static var matrix: [(Codec, Container)] {
        codecs.flatMap { codec in containers.map { (codec, $0) } }
    }

    @Test(arguments: matrix)
    func matchesTheFFmpegCLI(codec: Codec, container: Container) throws {
        let key = "\(codec.name)/\(container.name)"
        guard let path = try Self.fixture(codec, container) else { return }
        #expect(!Self.refused.contains(key), "\(key) is listed as refused but ffmpeg muxed it")
        if Self.unreadable.contains(key) {
            // ffmpeg either fails ("does not contain any stream") or decodes a fraction of it with errors.
            let reference = (try? Self.ffmpegPCM(path)) ?? []
            #expect(reference.count < Self.expected / 2, "ffmpeg now reads \(key) back; compare it instead")
            return
        }
        let reference = try Self.ffmpegPCM(path)
        let ours = AudioTests.samples16(try Media.audioPCM(
            input(path), options: .init(sampleRate: Self.rate, channels: 1), limits: .default))

        // Count. The same decoder runs in both, so the counts agree to the resampler's rounding; the one deliberate
        // difference is end padding that the container declares sample-exactly (MP4's last packet duration), which
        // we trim and ffmpeg 5.1 keeps: then we hold exactly the 2 s that were encoded.
        let trimmedPadding = abs(ours.count - Self.expected) <= 1 && ours.count < reference.count
        #expect(abs(ours.count - reference.count) <= 1 || trimmedPadding,
                "\(key): \(ours.count) samples, ffmpeg \(reference.count)")
        #expect(ours.count >= Self.expected - 1, "\(key): \(ours.count) samples, fewer than the 2 s encoded")

        // Waveform: sample i is sample i of ffmpeg's output (no shift), over everything both hold.
        // Where we trimmed padding, the resampler's last output sample saw the end of the input where ffmpeg's saw
        // padding, so the comparison stops a filter length (16 samples) short.
        let common = min(ours.count, reference.count) - (trimmedPadding ? 16 : 0)
        let comparison = Compare(Array(ours[..<common]), Array(reference[..<common]))
        #expect(comparison.correlation > 0.9999, "\(key): correlation \(comparison.correlation)")
        #expect(comparison.maxDifference <= 2, "\(key): max difference \(comparison.maxDifference) at \(comparison.worstIndex)")

        // No gap: inside the sweep (past priming, before padding) no two consecutive samples are both zero.
        let body = ours[800..<(Self.expected - 800)]
        let zeros = zip(body, body.dropFirst()).filter { $0 == 0 && $1 == 0 }.count
        #expect(zeros == 0, "\(key): \(zeros) pairs of consecutive zero samples inside the sweep")

        // A window holds the full decode's samples for its span, and exactly (end − start) × rate of them.
        let window = AudioTests.samples16(try Media.audioPCM(
            input(path), options: .init(sampleRate: Self.rate, channels: 1, window: .init(startSeconds: 0.75, endSeconds: 1.5)),
            limits: .default))
        #expect(window.count == 12000, "\(key): window of \(window.count) samples")
        // The full decode starts at the first decoded frame's time on the container timeline, which is not always 0
        // (Vorbis in Matroska: 3 ms, the first packet only primes the decoder), so its sample i is timeline sample
        // i + offset; ffprobe says where that first frame is.
        let offset = Int((try Self.firstFrameSeconds(path) * Double(Self.rate)).rounded())
        if window.count == 12000 {
            let slice = Compare(window, Array(ours[(12000 - offset)..<(24000 - offset)]))
            // A seek restarts lossy decoders from a keyframe/pre-roll, so allow codec-level differences, not shifts.
            #expect(slice.correlation > 0.999, "\(key): window correlation \(slice.correlation)")
        }
    }
}

extension AudioMatrixTests {
    /// Past `coarseSeekHorizon` (60 s) a window in a millisecond time base is reached by seeking, and placed by the
    /// first frame's timestamp: then it may sit up to half a millisecond (8 samples at 16 kHz) off the full decode,
    /// but it is still one continuous piece of the sweep.
    @Test func aWindowPastTheHorizonInMatroskaIsWithinHalfAMillisecond() throws {
        let path = fixtures.make("sweep-long.mkv", [
            "-f", "lavfi", "-i", "aevalsrc=0.5*sin(2*PI*(200*t+10*t*t)):s=44100:d=62", "-c:a", "aac",
        ])
        let full = AudioTests.samples16(try Media.audioPCM(
            input(path), options: .init(sampleRate: Self.rate, channels: 1), limits: .default))
        let window = AudioTests.samples16(try Media.audioPCM(
            input(path), options: .init(sampleRate: Self.rate, channels: 1, window: .init(startSeconds: 61, endSeconds: 61.5)),
            limits: .default))
        #expect(window.count == 8000)
        guard window.count == 8000, full.count >= 984_016 else { return }
        let best = (-9...9).map { lag in (lag, Compare(window, Array(full[(976_000 + lag)..<(984_000 + lag)]))) }
            .max { $0.1.correlation < $1.1.correlation }!
        // The best whole-sample lag leaves at most half a sample of offset; at the sweep's 1420 Hz there that bounds
        // the correlation below by cos(π × 1420 / 16000) ≈ 0.96. Each half on its own at that lag: a gap inside the
        // window would break one of them.
        #expect(best.1.correlation > 0.95, "best lag \(best.0): correlation \(best.1.correlation)")
        for half in [0..<4000, 4000..<8000] {
            let part = Compare(Array(window[half]), Array(full[(976_000 + best.0 + half.lowerBound)..<(976_000 + best.0 + half.upperBound)]))
            #expect(part.correlation > 0.95, "samples \(half) at lag \(best.0): correlation \(part.correlation)")
        }
    }
}

/// Pearson correlation and the largest absolute difference of two equally long signals.
struct Compare {
    var correlation: Double
    var maxDifference: Int
    var worstIndex: Int

    init(_ a: [Int16], _ b: [Int16]) {
        precondition(a.count == b.count)
        let n = Double(max(a.count, 1))
        let meanA = a.reduce(0.0) { $0 + Double($1) } / n
        let meanB = b.reduce(0.0) { $0 + Double($1) } / n
        var (ab, aa, bb) = (0.0, 0.0, 0.0)
        var worst = (0, 0)
        for i in a.indices {
            let x = Double(a[i]) - meanA
            let y = Double(b[i]) - meanB
            ab += x * y
            aa += x * x
            bb += y * y
            let difference = abs(Int(a[i]) - Int(b[i]))
            if difference > worst.0 { worst = (difference, i) }
        }
        correlation = aa > 0 && bb > 0 ? ab / (aa * bb).squareRoot() : (aa == bb ? 1 : 0)
        maxDifference = worst.0
        worstIndex = worst.1
    }
}
