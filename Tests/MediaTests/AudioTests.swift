import Foundation
import Media
import Testing

@Suite struct AudioTests {
    static func samples16(_ pcm: PCMAudio) -> [Int16] {
        pcm.data.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }.map { Int16(littleEndian: $0) }
    }

    static func samples32(_ pcm: PCMAudio) -> [Float] {
        pcm.data.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }.map { Float(bitPattern: UInt32(littleEndian: $0)) }
    }

    @Test func stereo44kToMono16kS16HasTheExactFrameCount() throws {
        let pcm = try Media.audioPCM(input(fixtures.wav), options: .init(sampleRate: 16000, channels: 1), limits: .default)
        #expect(abs(pcm.frameCount - 32000) <= 1)
        #expect(pcm.data.count == pcm.frameCount * 2)
        #expect(pcm.sampleRate == 16000 && pcm.channels == 1 && pcm.format == .s16)
        // The same conversion by the ffmpeg CLI (also swresample with its defaults) is the reference.
        let reference = try run("ffmpeg", ["-nostdin", "-v", "error", "-i", fixtures.wav, "-ar", "16000", "-ac", "1", "-f", "s16le", "-"])
        let expected = reference.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
        #expect(abs(expected.count - pcm.frameCount) <= 1)
        let samples = Self.samples16(pcm)
        let worst = zip(samples, expected).map { abs(Int($0) - Int($1)) }.max()!
        #expect(worst <= 1)
        // The tone's peak (1/8, −3 dB from the CLI's mono-to-stereo upmix) survives.
        let peak = samples.map { abs(Int($0)) }.max()!
        #expect(abs(peak - 2896) < 60)
    }

    @Test func aacInMP4IsTrimmedToTheDeclaredDuration() throws {
        // The last AAC packet of the 2 s track holds 136 real samples of 1024; the rest must not come out.
        let pcm = try Media.audioPCM(input(fixtures.clip), options: .init(sampleRate: 16000, channels: 1), limits: .default)
        #expect(abs(pcm.frameCount - 32000) <= 1)
    }

    @Test func float32Stereo() throws {
        let pcm = try Media.audioPCM(
            input(fixtures.wav), options: .init(sampleRate: 48000, channels: 2, format: .f32), limits: .default)
        #expect(abs(pcm.frameCount - 96000) <= 1)
        #expect(pcm.data.count == pcm.frameCount * 8)
        let samples = Self.samples32(pcm)
        #expect(samples.allSatisfy { abs($0) <= 0.1 })
        #expect(abs(samples.map { abs($0) }.max()! - 0.0884) < 0.002)
        // Interleaved: both channels carry the same tone.
        #expect((0..<1000).allSatisfy { samples[2 * $0] == samples[2 * $0 + 1] })
    }

    @Test func windowAndMaxDurationTrimBySamples() throws {
        let source = input(fixtures.wav)
        let window = try Media.audioPCM(
            source, options: .init(sampleRate: 16000, channels: 1, window: .init(startSeconds: 0.5, endSeconds: 1.25)),
            limits: .default)
        #expect(window.frameCount == 12000)
        let capped = try Media.audioPCM(
            source, options: .init(sampleRate: 16000, channels: 1, maxDurationSeconds: 0.3), limits: .default)
        #expect(capped.frameCount == 4800)
        let both = try Media.audioPCM(
            source, options: .init(sampleRate: 16000, channels: 1, window: .init(startSeconds: 0.25, endSeconds: 1.5),
                                   maxDurationSeconds: 0.5), limits: .default)
        #expect(both.frameCount == 8000)
        let tail = try Media.audioPCM(
            source, options: .init(sampleRate: 16000, channels: 1, window: .init(startSeconds: 1.5)), limits: .default)
        #expect(abs(tail.frameCount - 8000) <= 1)
        let beyond = try Media.audioPCM(
            source, options: .init(sampleRate: 16000, channels: 1, window: .init(startSeconds: 5)), limits: .default)
        #expect(beyond.frameCount == 0)
    }

    @Test func aWindowHoldsTheSameSamplesAsTheFullDecode() throws {
        let source = input(fixtures.wav)
        let full = Self.samples16(try Media.audioPCM(source, options: .init(sampleRate: 16000, channels: 1), limits: .default))
        let part = Self.samples16(try Media.audioPCM(
            source, options: .init(sampleRate: 16000, channels: 1, window: .init(startSeconds: 1.0, endSeconds: 1.5)),
            limits: .default))
        #expect(part.count == 8000)
        let slice = Array(full[16000..<24000])
        let worst = zip(part, slice).map { abs(Int($0) - Int($1)) }.max()!
        #expect(worst <= 2)
    }

    @Test func aacWindowAfterSeeking() throws {
        let full = Self.samples16(try Media.audioPCM(input(fixtures.clip), options: .init(sampleRate: 16000, channels: 1), limits: .default))
        let part = Self.samples16(try Media.audioPCM(
            input(fixtures.clip), options: .init(sampleRate: 16000, channels: 1, window: .init(startSeconds: 1.2, endSeconds: 1.7)),
            limits: .default))
        #expect(part.count == 8000)
        let slice = Array(full[19200..<27200])
        let worst = zip(part, slice).map { abs(Int($0) - Int($1)) }.max()!
        #expect(worst <= 64, "decoded after a seek with pre-roll, the window matches the full decode")
    }

    @Test func monoToStereoDuplicates() throws {
        let pcm = try Media.audioPCM(input(fixtures.audioOnly), options: .init(sampleRate: 22050, channels: 2), limits: .default)
        #expect(abs(pcm.frameCount - 22050) <= 1)
        let samples = Self.samples16(pcm)
        #expect((0..<pcm.frameCount).allSatisfy { samples[2 * $0] == samples[2 * $0 + 1] })
    }

    @Test func videoWithoutAudioIsRefused() {
        #expect(reason {
            try Media.audioPCM(input(fixtures.redBlue), options: .init(sampleRate: 16000, channels: 1), limits: .default)
        } == .noAudioStream)
    }

    @Test func optionsOutOfRangeAreRefused() {
        for options in [
            AudioOptions(sampleRate: 0, channels: 1), AudioOptions(sampleRate: 16000, channels: 0),
            AudioOptions(sampleRate: 16000, channels: 1, maxDurationSeconds: 0),
            AudioOptions(sampleRate: 16000, channels: 1, window: .init(startSeconds: 2, endSeconds: 1)),
        ] {
            #expect(reason { try Media.audioPCM(input(fixtures.wav), options: options, limits: .default) } == .invalidOptions)
        }
    }
}
