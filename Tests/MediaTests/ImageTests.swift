import Foundation
import Media
import Testing

@Suite struct ImageTests {
    @Test(arguments: ["png", "jpg", "webp", "bmp", "gif", "tiff"])
    func stillImagesResizeToPNGAndJPEG(ext: String) throws {
        let source = input(fixtures.still(ext))
        let png = try Media.image(source, options: .init(width: 32, height: 32, resize: .pad, format: .png), limits: .default)
        let pngInfo = try ffprobe(png, "a.png")
        #expect(pngInfo["codec_name"] == "png" && pngInfo["width"] == "32" && pngInfo["height"] == "32")
        #expect(pngInfo["pix_fmt"] == "rgb24")

        let jpeg = try Media.image(source, options: .init(width: 40, height: 30, resize: .crop, format: .jpeg(quality: 85)), limits: .default)
        let jpegInfo = try ffprobe(jpeg, "a.jpg")
        #expect(jpegInfo["codec_name"] == "mjpeg" && jpegInfo["width"] == "40" && jpegInfo["height"] == "30")
        #expect(Array(jpeg.prefix(3)) == [0xFF, 0xD8, 0xFF] && Array(jpeg.suffix(2)) == [0xFF, 0xD9])
    }

    @Test func oneSideKeepsTheAspectRatioAndNoneKeepsTheSize() throws {
        let source = input(fixtures.still("png"))  // 64×48
        let byWidth = try ffprobe(try Media.image(source, options: .init(width: 32), limits: .default), "w.png")
        #expect(byWidth["width"] == "32" && byWidth["height"] == "24")
        let byHeight = try ffprobe(try Media.image(source, options: .init(height: 12), limits: .default), "h.png")
        #expect(byHeight["width"] == "16" && byHeight["height"] == "12")
        let same = try ffprobe(try Media.image(source, options: .init(), limits: .default), "s.png")
        #expect(same["width"] == "64" && same["height"] == "48")
    }

    @Test func pixelsSurviveThePNGRoundTrip() throws {
        let path = fixtures.make("redblue.png", ["-i", fixtures.redBlue, "-frames:v", "1"])
        let png = try Media.image(input(path), options: .init(width: 32, height: 16, resize: .stretch), limits: .default)
        let written = fixtures.write(png, "roundtrip.png")
        let pixels = try ffmpegRGB(written).map(Int.init)
        #expect(pixels.count == 32 * 16 * 3)
        func at(_ x: Int, _ y: Int) -> [Int] { Array(pixels[(y * 32 + x) * 3..<(y * 32 + x) * 3 + 3]) }
        #expect(close(at(3, 8), [255, 0, 0]) && close(at(28, 8), [0, 0, 255]))
    }

    @Test func transparencyIsFlattenedOntoWhite() throws {
        let path = fixtures.make("transparent.png", [
            "-f", "lavfi", "-i", "color=c=black@0.0:s=16x16,format=rgba", "-frames:v", "1",
        ])
        let png = try Media.image(input(path), options: .init(), limits: .default)
        let pixels = try ffmpegRGB(fixtures.write(png, "flattened.png"))
        #expect(pixels.count == 16 * 16 * 3 && pixels.allSatisfy { $0 == 255 })
    }

    @Test func jpegQualityChangesTheSize() throws {
        let source = input(fixtures.still("png"))
        let high = try Media.image(source, options: .init(format: .jpeg(quality: 95)), limits: .default)
        let low = try Media.image(source, options: .init(format: .jpeg(quality: 10)), limits: .default)
        #expect(high.count > low.count)
        #expect(reason { try Media.image(source, options: .init(format: .jpeg(quality: 0)), limits: .default) } == .invalidOptions)
    }

    @Test func thumbnailOfAVideoIsItsFirstFrameUpright() throws {
        let thumbnail = try ffprobe(try Media.image(input(fixtures.clip), options: .init(), limits: .default), "t.png")
        #expect(thumbnail["width"] == "320" && thumbnail["height"] == "240")
        let rotated = try Media.image(input(fixtures.rotated(90)), options: .init(format: .png), limits: .default)
        let info = try ffprobe(rotated, "r.png")
        #expect(info["width"] == "32" && info["height"] == "64")
        let reference = try ffmpegRGB(fixtures.rotated(90))
        #expect(try ffmpegRGB(fixtures.write(rotated, "rotated-thumb.png")) == reference)
    }

    /// EXIF orientation 6 ("rotate 90° clockwise to display"), as phones write it, on a 64×48 JPEG.
    @Test func exifOrientationIsHonoured() throws {
        let jpeg = fixtures.bytes(fixtures.still("jpg"))
        let tiff: [UInt8] = Array("MM".utf8) + [0, 0x2A, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]
        let app1 = Array("Exif".utf8) + [0, 0] + tiff
        let segment: [UInt8] = [0xFF, 0xE1, UInt8((app1.count + 2) >> 8), UInt8((app1.count + 2) & 0xFF)] + app1
        let rotated = Array(jpeg.prefix(2)) + segment + Array(jpeg.dropFirst(2))
        let info = try ffprobe(try Media.image(.bytes(rotated), options: .init(), limits: .default), "exif.png")
        #expect(info["width"] == "48" && info["height"] == "64")
        let frames = try Media.videoFrames(.bytes(rotated), options: .init(fps: 1, width: 48, height: 64, maxFrames: 1), limits: .default)
        // Upright and exactly the target's shape: no letterbox rows.
        #expect(frames.frames == 1 && (0..<48).contains { frames.value(frame: 0, y: 0, x: $0) != 0 })
    }

    @Test func audioHasNoPicture() {
        #expect(reason { try Media.image(input(fixtures.audioOnly), options: .init(), limits: .default) } == .noVideoStream)
    }
}

@Suite struct ProbeTests {
    @Test func clipFields() throws {
        let probe = try Media.probe(input(fixtures.clip), limits: .default)
        #expect(probe.container.contains("mp4"))
        #expect(abs((probe.durationSeconds ?? 0) - 2.0) < 0.05)
        #expect(probe.videoCodec == "h264" && probe.width == 320 && probe.height == 240)
        #expect(probe.fps == 25 && probe.rotation == 0)
        #expect(probe.audioCodec == "aac" && probe.sampleRate == 44100 && probe.channels == 2)
    }

    /// `rotation` is what ffprobe prints for the same file, sign and all; ffmpeg 5.1 has no `-display_rotation`, so
    /// the files carry the `rotate` metadata its MP4 muxer turns into a display matrix.
    @Test(arguments: [0, 90, 180, 270, -90, 45])
    func rotationIsWhatFFprobePrints(degrees: Int) throws {
        let path = degrees == 0 ? fixtures.make("redblue0.mp4", ["-i", fixtures.redBlue, "-c", "copy"]) : fixtures.rotated(degrees)
        let expected = try ffprobeRotation(path)
        let rotation = try Media.probe(input(path), limits: .default).rotation
        #expect(rotation == expected, "rotate=\(degrees)")
        // The values themselves, so a change in ffprobe's convention is noticed here too.
        let known = [0: 0, 90: 90, 180: -180, 270: -90, -90: -90, 45: 45]
        #expect(expected == known[degrees], "ffprobe prints rotation=\(expected) for rotate=\(degrees)")
    }

    @Test func audioOnlyAndStill() throws {
        let audio = try Media.probe(input(fixtures.audioOnly), limits: .default)
        #expect(audio.videoCodec == nil && audio.width == nil && audio.audioCodec == "aac" && audio.channels == 1)
        let still = try Media.probe(input(fixtures.still("png")), limits: .default)
        #expect(still.container == "png_pipe" && still.videoCodec == "png" && still.width == 64 && still.height == 48)
        #expect(still.audioCodec == nil)
    }
}

@Suite struct RemuxTests {
    @Test(arguments: ["matroska", "mp4", "mov"])
    func streamCopyKeepsEveryStream(container: String) throws {
        let output = try Media.remux(input(fixtures.clip), container: container, limits: .default)
        let probe = try Media.probe(.bytes(output), limits: .default)
        #expect(probe.videoCodec == "h264" && probe.width == 320 && probe.height == 240)
        #expect(probe.audioCodec == "aac" && probe.sampleRate == 44100 && probe.channels == 2)
        let frames = try Media.videoFrames(.bytes(output), options: .init(fps: 5, width: 16, height: 16, maxFrames: 100), limits: .default)
        // Matroska cannot store the AAC priming as a negative start, so the muxer shifts every stream by those
        // 1024 samples (23 ms), as `ffmpeg -c copy` does: the video then ends at 2.023 s, and 5 fps gives 11 frames.
        #expect(frames.frames == (container == "matroska" ? 11 : 10))
    }

    @Test func rotationIsCarriedIntoMP4() throws {
        let output = try Media.remux(input(fixtures.rotated(90)), container: "mp4", limits: .default)
        let rotation = try Media.probe(.bytes(output), limits: .default).rotation
        let expected = try ffprobeRotation(fixtures.rotated(90))
        #expect(rotation == 90 && rotation == expected)
    }

    @Test func unsuitableTargets() {
        #expect(reason { try Media.remux(input(fixtures.clip), container: "webm", limits: .default) } == .unsupportedCodec)
        #expect(reason { try Media.remux(input(fixtures.clip), container: "no-such-muxer", limits: .default) } == .unsupportedFormat)
        #expect(reason { try Media.remux(input(fixtures.clip), container: "image2", limits: .default) } == .unsupportedFormat)
        var small = MediaLimits.default
        small.maxOutputBytes = 10_000
        #expect(reason { try Media.remux(input(fixtures.clip), container: "matroska", limits: small) } == .tooLarge)
    }
}
