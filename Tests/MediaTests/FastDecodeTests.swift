import Foundation
@testable import Media
import Testing

/// `DecodeMode.fast` against `exact` on the same files: the same frames picked (timestamps and count), pixels within
/// a PSNR bound. The bound, 32 dB for the worst frame, is what "indistinguishable for training" is taken to mean here;
/// measured values are printed: the worst frame is 34-40 dB when the picture is resized (area instead of bicubic
/// resampling, no deblocking), 40-45 dB at the source size (the H.264 clips are encoded with x264's defaults,
/// deblocking on).
@Suite struct FastDecodeTests {
    static let worstFrameBound = 32.0

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
        VideoFramesOptions(fps: 5, width: 112, height: 112, resize: .crop, pixelFormat: .gray8, maxFrames: 16),
        VideoFramesOptions(fps: 5, width: 640, height: 480, resize: .stretch, maxFrames: 4),
    ])
    func fastPicksTheSameFramesWithinThePSNRBound(bFrames: Int, options: VideoFramesOptions) throws {
        let path = Self.clip(bFrames: bFrames)
        let exact = try Self.frames(path, options, .exact)
        let fast = try Self.frames(path, options, .fast)
        #expect(exact.frames > 0)
        #expect(fast.frames == exact.frames)
        #expect(fast.sourceTimestamps == exact.sourceTimestamps)
        guard fast.frames == exact.frames else { return }
        Self.expectWithinBound(
            exact, fast, "-bf \(bFrames), \(options.width)x\(options.height) \(options.resize) \(options.pixelFormat) at \(options.fps) fps")
    }

    /// Prints the worst frame's and the whole tensor's PSNR and holds the worst frame to the bound.
    static func expectWithinBound(_ exact: FrameTensor, _ fast: FrameTensor, _ label: String) {
        let size = exact.height * exact.width * exact.channels
        var worst = Double.infinity
        for t in 0..<exact.frames {
            let range = t * size..<(t + 1) * size
            worst = min(worst, psnr(Array(exact.pixels[range]), Array(fast.pixels[range])))
        }
        let all = psnr(exact.pixels, fast.pixels)
        print("fast decode, \(label): worst frame PSNR \(String(format: "%.1f", worst)) dB, all frames \(String(format: "%.1f", all)) dB")
        #expect(worst >= worstFrameBound, "\(label): worst frame PSNR \(worst) dB")
    }

    /// Inputs where fast mode's stream analysis skips the pictures (MP4 with H.264 or HEVC: HEVC, a fragmented MP4
    /// whose header has no sample table, an audio stream beside the video, variable frame rate) and one where it
    /// does not (Matroska): the same frames, within the bound.
    @Test(arguments: [
        ("fast-hevc.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=2", "-c:v", "libx265", "-preset", "fast",
                           "-x265-params", "log-level=none", "-pix_fmt", "yuv420p"]),
        ("fast-frag.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=2", "-c:v", "libx264", "-bf", "3",
                           "-movflags", "frag_keyframe+empty_moov", "-pix_fmt", "yuv420p"]),
        ("fast-audio.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=2", "-f", "lavfi", "-i", "sine=d=2",
                            "-c:v", "libx264", "-bf", "3", "-c:a", "aac", "-pix_fmt", "yuv420p"]),
        ("fast-vfr.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=10:d=2,setpts='if(lt(N,10),N,10+(N-10)*5)'",
                          "-fps_mode", "vfr", "-c:v", "libx264", "-bf", "3", "-pix_fmt", "yuv420p"]),
        ("fast-bf3.mkv", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=2", "-c:v", "libx264", "-bf", "3",
                          "-pix_fmt", "yuv420p"]),
    ])
    func fastPicksTheSameFramesInOtherContainers(name: String, arguments: [String]) throws {
        let path = fixtures.make(name, arguments)
        for options in [
            VideoFramesOptions(fps: 5, width: 112, height: 112, maxFrames: 100),
            VideoFramesOptions(fps: 7, width: 160, height: 120, maxFrames: 5, window: .init(startSeconds: 0.55)),
        ] {
            let exact = try Self.frames(path, options, .exact)
            let fast = try Self.frames(path, options, .fast)
            #expect(exact.frames > 0)
            #expect(fast.frames == exact.frames, "\(name)")
            #expect(fast.sourceTimestamps == exact.sourceTimestamps, "\(name)")
            guard fast.frames == exact.frames else { continue }
            Self.expectWithinBound(exact, fast, "\(name), \(options.width)x\(options.height) at \(options.fps) fps")
        }
    }

    @Test func analysisSkipsPicturesOnlyForMP4WithH264OrHEVC() {
        let mov = "mov,mp4,m4a,3gp,3g2,mj2"
        #expect(StreamAnalysis.canSkipPictures(container: mov, codec: "h264"))
        #expect(StreamAnalysis.canSkipPictures(container: mov, codec: "hevc"))
        #expect(!StreamAnalysis.canSkipPictures(container: mov, codec: "mpeg4"))
        #expect(!StreamAnalysis.canSkipPictures(container: mov, codec: "av1"))
        #expect(!StreamAnalysis.canSkipPictures(container: "matroska,webm", codec: "h264"))
        #expect(!StreamAnalysis.canSkipPictures(container: "h264", codec: "h264"))
        #expect(!StreamAnalysis.canSkipPictures(container: "mpegts", codec: "h264"))
    }

    @Test func onlyFastResizesWithTheAreaFilter() {
        #expect(ScaleFilter(.exact) == .bicubic)
        #expect(ScaleFilter(.fast) == .area)
    }

    /// Variable frame rate: which frame is taken depends on the real timestamps, and fast decoding must not change it.
    @Test func variableFrameRatePicksTheSameFrames() throws {
        let options = VideoFramesOptions(fps: 4, width: 32, height: 32, maxFrames: 30)
        let exact = try Self.frames(fixtures.variableFrameRate, options, .exact)
        let fast = try Self.frames(fixtures.variableFrameRate, options, .fast)
        #expect(fast.sourceTimestamps == exact.sourceTimestamps)
        #expect(fast.pixels == exact.pixels, "lossless intra-coded frames at the source size: nothing to skip, deblock or resample")
    }
}
