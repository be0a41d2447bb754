import Foundation
import Testing

private let headPipeline = """
    name: clips
    source:
      query: SELECT id, media FROM $S.clips
      cursor_column: id
      key_column: id
    columns:
      - name: frames
        from: media
        video_frames: {fps: 2, width: 32, height: 24, resize: pad, max_frames: 2}
      - name: audio
        from: media
        audio_pcm: {sample_rate: 16000, channels: 1, format: s16, max_seconds: 1}
      - name: thumb
        from: media
        image: {width: 16, height: 16, resize: crop, format: png}
    split: {ratios: {train: 1}}
    """

@Suite("etl head: samples printed, media summarized and extracted")
struct ToolsHeadTests {
    @Test func headPrintsSamplesAndExtractsFilesFFprobeAccepts() throws {
        let ws = try Workspace("head")
        try ws.sql("CREATE TABLE $S.clips (id bigint PRIMARY KEY, media bytea NOT NULL)")
        let clip = try TestMedia.clip()
        try ws.sql("INSERT INTO $S.clips VALUES (1, '\(hexLiteral(clip))'::bytea), (2, '\(hexLiteral(clip))'::bytea)")
        try ws.writePipeline("clips", headPipeline)
        let run = try ws.etl("run", "clips")
        #expect(run.status == 0, "\(run.output)")

        let head = try ws.etl("head", "clips", "-n", "1")
        #expect(head.status == 0, "\(head.output)")
        expectSameOutput(normalizedOutput(head.stdout, ws), """
            clips@v1 train __key__=1
              audio   ndarray:int16  int16 (16000, 1), 32000 bytes, sha256 ################
              frames  ndarray:uint8  uint8 (2, 24, 32, 3), 4608 bytes, sha256 ################
              thumb   png            \(try thumbBytes(ws)) bytes, sha256 ################

            """)

        let out = ws.directory.appendingPathComponent("out")
        let extract = try ws.etl("head", "clips@v1", "--split", "train", "--key", "2", "--extract", out.path)
        #expect(extract.status == 0, "\(extract.output)")
        #expect(extract.stdout.hasPrefix("clips@v1 train __key__=2\n"))
        let sample = out.appendingPathComponent("train-2")
        #expect(try FileManager.default.contentsOfDirectory(atPath: sample.path).sorted()
                == ["audio.wav", "frames_000.png", "frames_001.png", "thumb.png"])
        for (file, codec, extra) in [("frames_000.png", "png", "width=32"), ("frames_001.png", "png", "height=24"),
                                     ("audio.wav", "pcm_s16le", "sample_rate=16000"), ("thumb.png", "png", "width=16")] {
            let probe = try runProcess("/usr/bin/ffprobe", ["-v", "error", "-show_streams", sample.appendingPathComponent(file).path])
            #expect(probe.status == 0 && probe.stderr.isEmpty, "ffprobe refused \(file): \(probe.stderr)")
            #expect(probe.stdout.contains("codec_name=\(codec)") && probe.stdout.contains(extra), "\(file): \(probe.stdout)")
        }
        // ffmpeg decodes every pixel of the PNG, and its checksums (CRC, Adler-32) hold.
        let decode = try runProcess("/usr/bin/ffmpeg", ["-v", "error", "-i", sample.appendingPathComponent("frames_001.png").path, "-f", "null", "-"])
        #expect(decode.status == 0 && decode.stderr.isEmpty, "\(decode.stderr)")

        #expect(try ws.etl("head", "clips", "--key", "99").status == 7)
        #expect(try ws.etl("head", "clips", "--split", "nope").status == 7)
    }

    private func thumbBytes(_ ws: Workspace) throws -> Int {
        guard case .bytes(let bytes)? = try ws.samples("clips", "v1", split: "train")["1"]?["thumb"] else { throw TestFailure("no thumb") }
        return bytes.count
    }
}
