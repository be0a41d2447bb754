import Foundation
import Media
import Testing

@Suite struct VideoFramesTests {
    static func expectedCount(duration: Double, fps: Double, start: Double = 0, end: Double? = nil, maxFrames: Int) -> Int {
        let span = min(end ?? .infinity, duration) - start
        return min(maxFrames, max(0, Int((span * fps).rounded(.up))))
    }

    @Test func constantFrameRateShapeAndCount() throws {
        let tensor = try Media.videoFrames(
            input(fixtures.clip), options: .init(fps: 5, width: 112, height: 112, maxFrames: 16), limits: .default)
        #expect(tensor.frames == 10)
        #expect(tensor.height == 112 && tensor.width == 112 && tensor.channels == 3)
        #expect(tensor.pixels.count == 10 * 112 * 112 * 3)
        // 25 fps source: sample k at k/5 s is exactly frame 5k.
        let expected: [Double] = (0..<10).map { Double($0) / 5 }
        #expect(tensor.sourceTimestamps.count == 10)
        #expect(zip(tensor.sourceTimestamps, expected).allSatisfy { abs($0 - $1) < 1e-9 })
    }

    @Test(arguments: [
        // fps, start, end, maxFrames
        (5.0, 0.0, nil, 16), (2.5, 0.0, nil, 16), (30.0, 0.0, nil, 100), (5.0, 0.0, nil, 4), (3.0, 0.0, nil, 100),
        (5.0, 0.5, 1.5, 16), (5.0, 1.5, nil, 16), (5.0, 0.0, 10.0, 16), (7.0, 0.3, 1.9, 100), (5.0, 3.0, nil, 16),
        (1.0, 0.0, nil, 16), (25.0, 0.0, nil, 1000),
    ] as [(Double, Double, Double?, Int)])
    func exactCounts(fps: Double, start: Double, end: Double?, maxFrames: Int) throws {
        let window = start == 0 && end == nil ? nil : TimeWindow(startSeconds: start, endSeconds: end)
        let tensor = try Media.videoFrames(
            input(fixtures.clip),
            options: .init(fps: fps, width: 16, height: 12, pixelFormat: .gray8, maxFrames: maxFrames, window: window),
            limits: .default)
        let expected = Self.expectedCount(duration: 2.0, fps: fps, start: start, end: end, maxFrames: maxFrames)
        #expect(tensor.frames == expected, "fps \(fps) window \(start)..<\(String(describing: end)) max \(maxFrames)")
        #expect(tensor.channels == 1)
        #expect(tensor.pixels.count == expected * 16 * 12)
        #expect(tensor.sourceTimestamps.count == expected)
    }

    @Test func windowPicksLastFrameAtOrBeforeEachSampleTime() throws {
        let tensor = try Media.videoFrames(
            input(fixtures.clip),
            options: .init(fps: 5, width: 32, height: 24, maxFrames: 16, window: .init(startSeconds: 0.5, endSeconds: 1.5)),
            limits: .default)
        // Samples at 0.5, 0.7, …, 1.3; the 25 fps frames at or before them are 0.48, 0.68, …, 1.28.
        #expect(tensor.frames == 5)
        let expected: [Double] = [0.48, 0.68, 0.88, 1.08, 1.28]
        #expect(zip(tensor.sourceTimestamps, expected).allSatisfy { abs($0 - $1) < 1e-9 })
    }

    @Test func seekingToTheWindowGivesTheSamePixelsAsDecodingFromTheStart() throws {
        // A GOP of 50 frames: the window starts 0.6 s after the only keyframe before it.
        let options = VideoFramesOptions(fps: 5, width: 64, height: 48, maxFrames: 16)
        let full = try Media.videoFrames(input(fixtures.clip), options: options, limits: .default)
        var windowed = options
        windowed.window = TimeWindow(startSeconds: 1.4, endSeconds: 2.0)
        let part = try Media.videoFrames(input(fixtures.clip), options: windowed, limits: .default)
        #expect(part.frames == 3)
        let frameBytes = 64 * 48 * 3
        #expect(Array(full.pixels[7 * frameBytes..<10 * frameBytes]) == part.pixels)
    }

    @Test func variableFrameRateIsSampledByTimestamp() throws {
        // Frame times: 0, 0.1, …, 0.9, then 1.0, 1.5, …, 5.5; frame n has grey level 10·n.
        let times = (0..<10).map { Double($0) / 10 } + (0..<10).map { 1 + Double($0) / 2 }
        let tensor = try Media.videoFrames(
            input(fixtures.variableFrameRate),
            options: .init(fps: 4, width: 32, height: 32, resize: .stretch, maxFrames: 100,
                           window: .init(startSeconds: 0, endSeconds: 5)),
            limits: .default)
        #expect(tensor.frames == 20)
        for k in 0..<tensor.frames {
            let t = Double(k) / 4
            let frame = times.lastIndex { $0 <= t + 1e-9 }!
            #expect(abs(tensor.sourceTimestamps[k] - times[frame]) < 1e-9, "sample \(k) at \(t) s")
            #expect(rgb(tensor, k, 16, 16) == [10 * frame, 10 * frame, 10 * frame], "sample \(k) at \(t) s")
        }
    }

    @Test func variableFrameRateCountUsesTheLastFramesEnd() throws {
        // The last frame is at 5.5 s and lasts 0.1 s (Matroska's default duration), so D = 5.6 s.
        let tensor = try Media.videoFrames(
            input(fixtures.variableFrameRate),
            options: .init(fps: 2, width: 8, height: 8, maxFrames: 100), limits: .default)
        #expect(tensor.frames == Self.expectedCount(duration: 5.6, fps: 2, maxFrames: 100))
        #expect(tensor.sourceTimestamps.last == 5.5)
    }

    @Test func stretchPadAndCropPlaceThePixelsExactly() throws {
        let source = input(fixtures.redBlue)  // 64×32, left red, right blue
        let red = [255, 0, 0], blue = [0, 0, 255], black = [0, 0, 0]

        let stretch = try Media.videoFrames(
            source, options: .init(fps: 5, width: 32, height: 32, resize: .stretch, maxFrames: 1), limits: .default)
        #expect(close(rgb(stretch, 0, 4, 16), red) && close(rgb(stretch, 0, 27, 16), blue))
        #expect(close(rgb(stretch, 0, 4, 0), red) && close(rgb(stretch, 0, 27, 31), blue))

        // Pad: scaled to 32×16, letterboxed at rows 8…23.
        let pad = try Media.videoFrames(
            source, options: .init(fps: 5, width: 32, height: 32, resize: .pad, maxFrames: 1), limits: .default)
        for x in [0, 15, 16, 31] {
            #expect(rgb(pad, 0, x, 0) == black && rgb(pad, 0, x, 7) == black)
            #expect(rgb(pad, 0, x, 24) == black && rgb(pad, 0, x, 31) == black)
        }
        #expect(close(rgb(pad, 0, 4, 8), red) && close(rgb(pad, 0, 4, 23), red) && close(rgb(pad, 0, 27, 16), blue))

        // Crop: the centre 32×32 of the source, 16 columns of each colour.
        let crop = try Media.videoFrames(
            source, options: .init(fps: 5, width: 32, height: 32, resize: .crop, maxFrames: 1), limits: .default)
        #expect(close(rgb(crop, 0, 2, 16), red) && close(rgb(crop, 0, 13, 0), red))
        #expect(close(rgb(crop, 0, 18, 16), blue) && close(rgb(crop, 0, 29, 31), blue))

        // Pillarbox the other way: 64×32 into 32×64 is 32×16 centred at rows 24…39.
        let tall = try Media.videoFrames(
            source, options: .init(fps: 5, width: 32, height: 64, resize: .pad, maxFrames: 1), limits: .default)
        #expect(rgb(tall, 0, 10, 23) == black && rgb(tall, 0, 10, 40) == black)
        #expect(close(rgb(tall, 0, 4, 30), red) && close(rgb(tall, 0, 28, 30), blue))
    }

    @Test func grayOutputUsesTheFullRange() throws {
        let white = fixtures.make("white.mp4", ["-f", "lavfi", "-i", "color=c=white:s=32x32:d=0.2", "-c:v", "libx264", "-pix_fmt", "yuv420p"])
        let black = fixtures.make("black.mp4", ["-f", "lavfi", "-i", "color=c=black:s=32x32:d=0.2", "-c:v", "libx264", "-pix_fmt", "yuv420p"])
        let options = VideoFramesOptions(fps: 5, width: 8, height: 8, pixelFormat: .gray8, maxFrames: 1)
        let w = try Media.videoFrames(input(white), options: options, limits: .default)
        let b = try Media.videoFrames(input(black), options: options, limits: .default)
        #expect(w.pixels.allSatisfy { $0 >= 253 })
        #expect(b.pixels.allSatisfy { $0 <= 2 })
    }

    /// ffmpeg 5.1 writes `rotate=90` as a display matrix that players (and the ffmpeg CLI) turn counter-clockwise,
    /// and `rotate=270` clockwise; either way the picture must come out portrait and match what ffmpeg shows.
    @Test(arguments: [90, 270, 180])
    func rotationMetadataGivesTheUprightPicture(degrees: Int) throws {
        let path = fixtures.rotated(degrees)
        let probe = try Media.probe(input(path), limits: .default)
        #expect(probe.width == 64 && probe.height == 32)
        let expected = try ffprobeRotation(path)
        #expect(probe.rotation == expected, "ffprobe prints rotation=\(expected)")

        let portrait = degrees != 180
        let (width, height) = portrait ? (32, 64) : (64, 32)
        let tensor = try Media.videoFrames(
            input(path), options: .init(fps: 5, width: width, height: height, resize: .pad, maxFrames: 1),
            limits: .default)
        let reference = try ffmpegRGB(path)
        #expect(reference.count == width * height * 3, "ffmpeg's autorotated frame is \(width)x\(height)")
        // No letterbox: the upright picture has exactly the target's shape. Compare the middle of each quadrant.
        for (x, y) in [(width / 4, height / 4), (3 * width / 4, height / 4), (width / 4, 3 * height / 4), (3 * width / 4, 3 * height / 4)] {
            let offset = (y * width + x) * 3
            let expected = reference[offset..<offset + 3].map(Int.init)
            #expect(close(rgb(tensor, 0, x, y), expected), "(\(x), \(y)) after rotate=\(degrees)")
        }
    }

    @Test func aClipWithoutVideoIsRefused() {
        #expect(reason {
            try Media.videoFrames(input(fixtures.audioOnly), options: .init(fps: 5, width: 8, height: 8, maxFrames: 4), limits: .default)
        } == .noVideoStream)
    }

    @Test func optionsOutOfRangeAreRefused() {
        let source = input(fixtures.redBlue)
        for options in [
            VideoFramesOptions(fps: 0, width: 8, height: 8, maxFrames: 1),
            VideoFramesOptions(fps: 5, width: 0, height: 8, maxFrames: 1),
            VideoFramesOptions(fps: 5, width: 8, height: 8, maxFrames: 1, window: .init(startSeconds: 1, endSeconds: 1)),
            VideoFramesOptions(fps: 5, width: 8, height: 8, maxFrames: 1, window: .init(startSeconds: -1)),
        ] {
            #expect(reason { try Media.videoFrames(source, options: options, limits: .default) } == .invalidOptions)
        }
    }

    @Test func parallelCallsShareNothing() throws {
        let options = VideoFramesOptions(fps: 5, width: 48, height: 48, resize: .crop, maxFrames: 16)
        let bytes = input(fixtures.clip)
        let reference = try Media.videoFrames(bytes, options: options, limits: .default)
        let results = Locked<[FrameTensor]>([])
        DispatchQueue.concurrentPerform(iterations: 6) { _ in
            let tensor = try? Media.videoFrames(bytes, options: options, limits: .default)
            if let tensor { results.withLock { $0.append(tensor) } }
        }
        let all = results.withLock { $0 }
        #expect(all.count == 6)
        #expect(all.allSatisfy { $0 == reference })
    }
}
