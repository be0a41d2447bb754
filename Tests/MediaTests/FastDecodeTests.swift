import Foundation
import Media
import Testing

/// `DecodeMode.fast` against `exact` on the same files: the same frames picked (timestamps and count), pixels within
/// a PSNR bound. The bound, 30 dB, is what "indistinguishable for training" is taken to mean here; measured values on
/// these clips are printed and stay far above it (the H.264 clips are encoded with x264's defaults, deblocking on).
@Suite struct FastDecodeTests {
    /// 2 s of testsrc2 at 320×240, 30 fps, H.264 (x264 preset medium) with `bFrames` B-frames, as `scripts/bench`.
    static func clip(bFrames: Int) -> String {
        fixtures.make("fast-bf\(bFrames).mp4", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=2", "-c:v", "libx264", "-preset", "medium",
            "-bf", "\(bFrames)", "-pix_fmt", "yuv420p",
        ])
    }

    static func psnr(_ a: [UInt8], _ b: [UInt8]) -> Double {
        precondition(a.count == b.count)
        var sum = 0.0
        for i in a.indices {
            let d = Double(a[i]) - Double(b[i])
            sum += d * d
        }
        let mse = sum / Double(max(a.count, 1))
        return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
    }

    static func frames(_ path: String, _ options: VideoFramesOptions, _ mode: DecodeMode) throws -> FrameTensor {
        var options = options
        options.decode = mode
        return try Media.videoFrames(input(path), options: options, limits: .default)
    }

    @Test(arguments: [0, 3], [
        VideoFramesOptions(fps: 5, width: 112, height: 112, maxFrames: 16),
        VideoFramesOptions(fps: 5, width: 320, height: 240, maxFrames: 16),
        VideoFramesOptions(fps: 30, width: 160, height: 120, maxFrames: 100),
        VideoFramesOptions(fps: 7, width: 160, height: 120, maxFrames: 5, window: .init(startSeconds: 0.55, endSeconds: 1.9)),
    ])
    func fastPicksTheSameFramesWithinThePSNRBound(bFrames: Int, options: VideoFramesOptions) throws {
        let path = Self.clip(bFrames: bFrames)
        let exact = try Self.frames(path, options, .exact)
        let fast = try Self.frames(path, options, .fast)
        #expect(exact.frames > 0)
        #expect(fast.frames == exact.frames)
        #expect(fast.sourceTimestamps == exact.sourceTimestamps)
        guard fast.frames == exact.frames else { return }
        let size = exact.height * exact.width * exact.channels
        var worst = Double.infinity
        for t in 0..<exact.frames {
            let range = t * size..<(t + 1) * size
            worst = min(worst, Self.psnr(Array(exact.pixels[range]), Array(fast.pixels[range])))
        }
        print("fast decode, -bf \(bFrames), \(options.width)x\(options.height) at \(options.fps) fps: worst frame PSNR \(String(format: "%.1f", worst)) dB")
        #expect(worst >= 30, "worst frame PSNR \(worst) dB")
    }

    /// Variable frame rate: which frame is taken depends on the real timestamps, and fast decoding must not change it.
    @Test func variableFrameRatePicksTheSameFrames() throws {
        let options = VideoFramesOptions(fps: 4, width: 32, height: 32, maxFrames: 30)
        let exact = try Self.frames(fixtures.variableFrameRate, options, .exact)
        let fast = try Self.frames(fixtures.variableFrameRate, options, .fast)
        #expect(fast.sourceTimestamps == exact.sourceTimestamps)
        #expect(fast.pixels == exact.pixels, "lossless intra-coded frames: nothing to skip, nothing to deblock")
    }
}
