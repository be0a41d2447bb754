import Foundation
import Media
import Testing

/// Broken and hostile inputs, each with the reason every operation must give.
///
/// Leak checks: build with `swift build --build-tests -Xswiftc -sanitize=address --scratch-path .build-asan` and run
/// `.build-asan/debug/etlPackageTests.xctest --testing-library swift-testing --filter CorpusTests` (LeakSanitizer
/// reports at exit). Valgrind 3.19 (Debian 12) cannot run the Swift Testing binary: it does not read Swift 6.3's
/// DWARF 5, and with debug info stripped it crashes in libdispatch's main-thread loop.
@Suite struct CorpusTests {
    enum Operation: CaseIterable {
        case probe, video, audio, image, remux
    }

    struct Item {
        var name: String
        var bytes: [UInt8]
        /// Expected reason per operation; an operation missing here must succeed.
        var expected: [Operation: MediaError.Reason]
        var limits = MediaLimits.default

        init(_ name: String, _ bytes: [UInt8], _ reason: MediaError.Reason, limits: MediaLimits = .default) {
            self.name = name
            self.bytes = bytes
            expected = Dictionary(uniqueKeysWithValues: Operation.allCases.map { ($0, reason) })
            self.limits = limits
        }

        init(_ name: String, _ bytes: [UInt8], _ expected: [Operation: MediaError.Reason], limits: MediaLimits = .default) {
            self.name = name
            self.bytes = bytes
            self.expected = expected
            self.limits = limits
        }
    }

    static func cut(_ bytes: [UInt8], _ fraction: Double) -> [UInt8] {
        Array(bytes.prefix(Int(Double(bytes.count) * fraction)))
    }

    static func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    /// A structurally complete PNG whose IHDR claims `width`×`height`; its pixel data is a token 1 KB.
    static func png(width: UInt32, height: UInt32, idat: [UInt8] = [0x78, 0x9C, 0x63, 0, 0, 0, 1, 0, 1]) -> [UInt8] {
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + pngChunk("IHDR", bigEndian(width) + bigEndian(height) + [8, 2, 0, 0, 0])
            + pngChunk("IDAT", idat) + pngChunk("IEND", [])
    }

    static func corpus() -> [Item] {
        let clip = fixtures.bytes(fixtures.clip)
        let fast = fixtures.bytes(fixtures.make("fast.mp4", ["-i", fixtures.clip, "-c", "copy", "-movflags", "+faststart"]))
        let mkv = fixtures.bytes(fixtures.make("clip.mkv", ["-i", fixtures.clip, "-c", "copy"]))
        let still = fixtures.bytes(fixtures.still("png"))
        let jpeg = fixtures.bytes(fixtures.still("jpg"))
        let gif = fixtures.bytes(fixtures.still("gif"))
        var generator = SplitMix(seed: 42)
        let random = (0..<65536).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        // The clip's own `ftyp` box, then noise: a valid-looking start, no structure after it.
        let ftyp = Array(clip.prefix(Int(clip[3]) | Int(clip[2]) << 8))
        var damagedHeader = clip
        for i in 0..<64 { damagedHeader[i] = 0 }
        var zeroWidth = still
        zeroWidth.replaceSubrange(16..<20, with: [0, 0, 0, 0])
        zeroWidth.replaceSubrange(29..<33, with: bigEndian(crc32(Array(zeroWidth[12..<29]))))
        let y4mHuge = Array("YUV4MPEG2 W60000 H60000 F25:1 Ip A1:1 C420jpeg\nFRAME\n".utf8) + [UInt8](repeating: 0, count: 4096)
        let y4mOverLimit = Array("YUV4MPEG2 W9000 H9000 F25:1 Ip A1:1 C420jpeg\nFRAME\n".utf8) + [UInt8](repeating: 0, count: 4096)
        let audio = fixtures.bytes(fixtures.audioOnly)
        let garbage = png(width: 16, height: 16, idat: [UInt8](repeating: 0xAB, count: 64))
        // Probing reads headers only, so it succeeds; decoding finds the damage.
        let brokenStill: [Operation: MediaError.Reason] = [
            .video: .corrupt, .audio: .noAudioStream, .image: .corrupt, .remux: .unsupportedCodec,
        ]
        let video = fixtures.bytes(fixtures.redBlue)

        var tinyInput = MediaLimits.default
        tinyInput.maxInputBytes = 1000
        var short = MediaLimits.default
        short.maxDurationSeconds = 1
        var instant = MediaLimits.default
        instant.decodeTimeBudgetSeconds = 0
        var fewPixels = MediaLimits.default
        fewPixels.maxPixels = 320 * 200

        return [
            Item("zero length", [], .empty),
            Item("random bytes", random, .unsupportedFormat),
            Item("text", Array("SELECT * FROM feedback;\n".utf8), .unsupportedFormat),
            Item("mp4 cut at 30%", cut(clip, 0.3), .truncated),
            Item("mp4 cut in its header", Array(clip.prefix(20)), .truncated),
            Item("faststart mp4 cut at 50%", cut(fast, 0.5), .truncated),
            Item("matroska cut at 50%", cut(mkv, 0.5), .truncated),
            Item("png cut in half", cut(still, 0.5), .truncated),
            Item("jpeg cut in half", cut(jpeg, 0.5), .truncated),
            Item("gif cut in half", cut(gif, 0.5), .truncated),
            Item("mp4 with its first 64 bytes zeroed", damagedHeader, .unsupportedFormat),
            Item("ftyp then random bytes", ftyp + random, .corrupt),
            Item("ftyp, a sound free box, then random bytes", ftyp + [0, 0, 0, 16] + Array("free".utf8) + [UInt8](repeating: 0, count: 8) + random, .corrupt),
            Item("png claiming width 0", zeroWidth, brokenStill),
            Item("png with garbage pixel data", garbage, brokenStill),
            Item("png claiming 60000×60000", png(width: 60000, height: 60000), .tooLarge),
            Item("png claiming 9000×9000", png(width: 9000, height: 9000), .tooLarge),
            Item("y4m claiming 60000×60000", y4mHuge, .tooLarge),
            Item("y4m claiming 9000×9000", y4mOverLimit, .tooLarge),
            Item("HLS playlist pointing at a local file", Array("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n\(fixtures.clip)\n#EXT-X-ENDLIST\n".utf8), .unsupportedFormat),
            Item("ffconcat list pointing at a local file", Array("ffconcat version 1.0\nfile \(fixtures.clip)\n".utf8), .unsupportedFormat),
            Item("audio only", audio, [.video: .noVideoStream, .image: .noVideoStream]),
            Item("video only", video, [.audio: .noAudioStream]),
            Item("input over maxInputBytes", clip, .tooLarge, limits: tinyInput),
            Item("duration over maxDurationSeconds", clip, .tooLong, limits: short),
            Item("time budget of zero", clip, .timeout, limits: instant),
            Item("picture over maxPixels", clip, .tooLarge, limits: fewPixels),
        ]
    }

    static func attempt(_ operation: Operation, _ item: Item) -> MediaError.Reason? {
        let input = MediaInput.bytes(item.bytes)
        switch operation {
        case .probe:
            return reason { try Media.probe(input, limits: item.limits) }
        case .video:
            return reason {
                try Media.videoFrames(input, options: .init(fps: 5, width: 32, height: 32, maxFrames: 16), limits: item.limits)
            }
        case .audio:
            return reason { try Media.audioPCM(input, options: .init(sampleRate: 16000, channels: 1), limits: item.limits) }
        case .image:
            return reason { try Media.image(input, options: .init(width: 32, format: .jpeg(quality: 80)), limits: item.limits) }
        case .remux:
            return reason { try Media.remux(input, container: "matroska", limits: item.limits) }
        }
    }

    @Test func everyItemGivesItsReason() {
        for item in Self.corpus() {
            for operation in Operation.allCases {
                let got = Self.attempt(operation, item)
                #expect(got == item.expected[operation], "\(item.name), \(operation)")
            }
        }
    }

    /// `decode: fast` decodes less (and its stream analysis no picture on MP4 H.264), yet refuses every item for the
    /// same reason as `exact`.
    @Test func fastVideoFramesGiveTheSameReasons() {
        for item in Self.corpus() {
            let exact = Self.attempt(.video, item)
            let fast = reason {
                try Media.videoFrames(
                    .bytes(item.bytes), options: .init(fps: 5, width: 32, height: 32, maxFrames: 16, decode: .fast),
                    limits: item.limits)
            }
            #expect(fast == exact, "\(item.name)")
        }
    }

    /// Whatever the noise behind a valid `ftyp` says, it is not a cut file; a real MP4 cut anywhere is.
    @Test func noiseAfterAnMP4HeaderIsCorruptAndACutMP4IsTruncated() {
        let clip = fixtures.bytes(fixtures.clip)
        let ftyp = Array(clip.prefix(Int(clip[3]) | Int(clip[2]) << 8))
        for seed in UInt64(1)...40 {
            var generator = SplitMix(seed: seed)
            let noise = (0..<4096).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let got = reason { try Media.probe(.bytes(ftyp + noise), limits: .default) }
            #expect(got == .corrupt, "seed \(seed)")
        }
        for fraction in [0.02, 0.1, 0.5, 0.9, 0.99] {
            #expect(reason { try Media.probe(.bytes(Self.cut(clip, fraction)), limits: .default) } == .truncated, "cut at \(fraction)")
        }
    }

    @Test func truncatedInputCanBeAcceptedExplicitly() throws {
        let fast = fixtures.bytes(fixtures.make("fast.mp4", ["-i", fixtures.clip, "-c", "copy", "-movflags", "+faststart"]))
        var limits = MediaLimits.default
        limits.acceptTruncated = true
        let tensor = try Media.videoFrames(
            .bytes(Self.cut(fast, 0.5)), options: .init(fps: 5, width: 32, height: 32, maxFrames: 16), limits: limits)
        #expect(tensor.frames > 0 && tensor.frames < 10)
        let again = try Media.videoFrames(
            .bytes(Self.cut(fast, 0.5)), options: .init(fps: 5, width: 32, height: 32, maxFrames: 16), limits: limits)
        #expect(again == tensor, "what a truncated file yields is deterministic")
    }

    @Test func errorsSayWhatAndWhere() {
        let clip = fixtures.bytes(fixtures.clip)
        do {
            _ = try Media.probe(.bytes(Self.cut(clip, 0.3)), limits: .default)
            Issue.record("a cut file must fail")
        } catch {
            #expect(error.message.contains("mdat"))
            #expect(error.description.hasPrefix("truncated: "))
            #expect(!error.isRetryable)
        }
    }
}

/// A tiny deterministic generator, so the random-bytes item is the same on every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
