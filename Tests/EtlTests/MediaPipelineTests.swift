import Foundation
import MDS
import Testing

/// Media generated in the test run by the ffmpeg CLI, loaded as bytea, run through the media transforms by `etl run`.
enum TestMedia {
    static let directory: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("etl-test-media-\(getpid())", isDirectory: true)
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    static func ffmpeg(_ output: String, _ arguments: [String]) throws -> [UInt8] {
        let url = directory.appendingPathComponent(output)
        if !FileManager.default.fileExists(atPath: url.path) {
            // Tests run in parallel: each encodes to a name of its own and renames, so no test reads a half file.
            let partial = directory.appendingPathComponent("\(UUID().uuidString)-\(output)")
            let result = try runProcess("/usr/bin/ffmpeg", ["-v", "error", "-y"] + arguments + [partial.path])
            guard result.status == 0 else { throw TestFailure("ffmpeg failed: \(result.stderr)") }
            guard rename(partial.path, url.path) == 0 else { throw TestFailure("cannot rename \(partial.path)") }
        }
        return Array(try Data(contentsOf: url))
    }

    /// Encoded once per test process (static lets initialize once, thread-safely), so parallel tests share bytes.
    private static let clipBytes = Result { try encodeClip() }
    private static let audioOnlyBytes = Result { try encodeAudioOnly() }
    private static let pngBytes = Result { try encodePNG() }

    static func clip() throws -> [UInt8] { try clipBytes.get() }
    static func audioOnly() throws -> [UInt8] { try audioOnlyBytes.get() }
    static func png() throws -> [UInt8] { try pngBytes.get() }

    /// 2 s, 320x240 at 25 fps, H.264 + AAC 44.1 kHz stereo.
    private static func encodeClip() throws -> [UInt8] {
        try ffmpeg("clip.mp4", ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", "-f", "lavfi", "-i",
                                "sine=frequency=440:sample_rate=44100:duration=2", "-ac", "2", "-c:v", "libx264", "-preset", "veryfast",
                                "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
    }

    private static func encodeAudioOnly() throws -> [UInt8] {
        try ffmpeg("tone.m4a", ["-f", "lavfi", "-i", "sine=frequency=300:duration=1", "-c:a", "aac"])
    }

    private static func encodePNG() throws -> [UInt8] {
        try ffmpeg("bars.png", ["-f", "lavfi", "-i", "smptebars=size=200x100", "-frames:v", "1"])
    }

    /// A PNG whose header claims 60000x60000: must be refused before anything is allocated for it.
    static func hugePNG() -> [UInt8] {
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
        }
        let ihdr = bigEndian(60000) + bigEndian(60000) + [8, 2, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", [0x78, 0x9C, 0x03, 0, 0, 0, 0, 1]) + chunk("IEND", [])
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }

    private static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
        }
        return ~crc
    }
}

func hexLiteral(_ bytes: [UInt8]) -> String {
    "\\x" + bytes.map { String(format: "%02x", $0) }.joined()
}

private let mediaPipeline = """
    name: media
    source:
      query: SELECT id, user_id, media, start_ms, end_ms FROM $S.uploads
      cursor_column: id
      key_column: id
    columns:
      - name: frames
        from: media
        video_frames: {fps: 5, width: 64, height: 48, resize: pad, max_frames: 16, window: {start_ms: start_ms, end_ms: end_ms}}
      - name: audio
        from: media
        audio_pcm: {sample_rate: 16000, channels: 1, format: s16}
      - name: thumb
        from: media
        image: {width: 32, height: 32, resize: crop, format: jpeg, quality: 80}
      - name: clip
        from: media
        probe: {fields: [duration, width, height, sample_rate]}
    split: {ratios: {train: 1}}
    media: {workers: 2}
    """

@Suite("etl run: media transforms and the corrupt corpus")
struct MediaPipelineTests {
    private func seed(_ ws: Workspace) throws {
        try ws.sql("CREATE TABLE $S.uploads (id bigint PRIMARY KEY, user_id int, media bytea, start_ms int, end_ms int)")
        let clip = try TestMedia.clip()
        let rows: [(Int, [UInt8], Int?, Int?)] = [
            (1, clip, nil, nil),
            (2, clip, 500, 1500),
            (3, Array(clip.prefix(clip.count * 3 / 10)), nil, nil),    // truncated upload
            (4, (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }, nil, nil),  // random bytes
            (5, [], nil, nil),                                        // empty
            (6, try TestMedia.audioOnly(), nil, nil),                 // audio where video is required
            (7, TestMedia.hugePNG(), nil, nil),                       // hostile header
            (8, try TestMedia.png(), nil, nil),                       // a still image: one frame, but no audio
            (9, clip, 2500, 3000),                                    // window past the end
            (10, [UInt8](repeating: 0, count: 64) + clip.dropFirst(64), nil, nil),  // a valid file with its header damaged
        ]
        for (id, bytes, start, end) in rows {
            try ws.db.execute("INSERT INTO \(ws.schema).uploads VALUES ($1, $2, $3, $4, $5)",
                              [String(id), String(id % 3), hexLiteral(bytes), start.map(String.init), end.map(String.init)])
        }
    }

    @Test func goodClipsBecomeTensorsAndBadUploadsAreQuarantinedWithReasons() throws {
        let ws = try Workspace("media")
        try seed(ws)
        try ws.writePipeline("media", mediaPipeline)
        let result = try ws.etl("run", "media")
        #expect(result.status == 0, "\(result.output)")

        let samples = try ws.samples("media", "v1", split: "train")
        #expect(Set(samples.keys) == ["1", "2"])
        let whole = try #require(samples["1"]), window = try #require(samples["2"])
        guard case .ndarray(let frames)? = whole["frames"], case .ndarray(let windowed)? = window["frames"] else {
            Issue.record("frames are not ndarrays")
            return
        }
        #expect(frames.dtype == .uint8 && frames.shape == [10, 48, 64, 3], "2 s at 5 fps")
        #expect(frames.data.count == 10 * 48 * 64 * 3)
        #expect(windowed.shape == [5, 48, 64, 3], "the 500-1500 ms window at 5 fps")
        guard case .ndarray(let audio)? = whole["audio"] else { Issue.record("audio is not an ndarray"); return }
        #expect(audio.dtype == .int16 && audio.shape.count == 2 && audio.shape[1] == 1)
        #expect(abs(audio.shape[0] - 32_000) <= 1, "2 s at 16 kHz, got \(audio.shape)")
        guard case .bytes(let jpeg)? = whole["thumb"] else { Issue.record("thumb is not bytes"); return }
        #expect(jpeg.starts(with: [0xFF, 0xD8, 0xFF]))
        #expect(whole["clip_width"] == .int(320) && whole["clip_height"] == .int(240) && whole["clip_sample_rate"] == .int(44_100))
        guard case .float(let duration)? = whole["clip_duration"] else { Issue.record("no duration"); return }
        #expect(abs(duration - 2) < 0.1)

        let manifest = try ws.manifest("media", "v1")
        #expect(manifest.counts.rowsRead == 10 && manifest.counts.newSamples == 2 && manifest.counts.quarantined == 8)
        #expect(manifest.cursor.to == "10", "quarantined rows are behind the cursor too")
        let lines = try String(contentsOf: ws.versionDirectory("media", "v1").appendingPathComponent("quarantine.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        var reasons: [String: String] = [:]
        for line in lines {
            let entry = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            reasons[entry["key"] as! String] = entry["reason"] as? String
            #expect((entry["message"] as? String)?.isEmpty == false)
        }
        #expect(reasons == [
            "3": "media_truncated", "4": "media_unsupported_format", "5": "media_empty", "6": "media_no_video_stream",
            "7": "media_too_large", "8": "media_no_audio_stream", "9": "media_no_frames", "10": "media_unsupported_format",
        ])
    }

    @Test func parallelWorkersGiveByteIdenticalShards() throws {
        let ws = try Workspace("mediapar")
        try seed(ws)
        try ws.writePipeline("one", mediaPipeline.replacingOccurrences(of: "name: media", with: "name: one").replacingOccurrences(of: "workers: 2", with: "workers: 1"))
        try ws.writePipeline("four", mediaPipeline.replacingOccurrences(of: "name: media", with: "name: four").replacingOccurrences(of: "workers: 2", with: "workers: 4"))
        #expect(try ws.etl("run", "one").status == 0)
        #expect(try ws.etl("run", "four").status == 0)
        let a = ws.versionDirectory("one", "v1").appendingPathComponent("train"), b = ws.versionDirectory("four", "v1").appendingPathComponent("train")
        let names = try FileManager.default.contentsOfDirectory(atPath: a.path).sorted()
        #expect(names == (try FileManager.default.contentsOfDirectory(atPath: b.path).sorted()))
        for name in names {
            #expect(FileManager.default.contents(atPath: a.appendingPathComponent(name).path) == FileManager.default.contents(atPath: b.appendingPathComponent(name).path), "\(name) differs")
        }
        let qa = try String(contentsOf: ws.versionDirectory("one", "v1").appendingPathComponent("quarantine.jsonl"), encoding: .utf8)
        let qb = try String(contentsOf: ws.versionDirectory("four", "v1").appendingPathComponent("quarantine.jsonl"), encoding: .utf8)
        #expect(qa == qb)
    }
}

@Suite("etl run: media from paths, passthrough")
struct MediaPathTests {
    @Test func pathColumnsResolveUnderTheMediaRootOnly() throws {
        let ws = try Workspace("paths")
        let root = ws.directory.appendingPathComponent("uploads", isDirectory: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("2026"), withIntermediateDirectories: true)
        try Data(try TestMedia.clip()).write(to: root.appendingPathComponent("2026/a.mp4"))
        try Data(try TestMedia.png()).write(to: ws.directory.appendingPathComponent("outside.png"))
        try FileManager.default.createSymbolicLink(at: root.appendingPathComponent("link.png"), withDestinationURL: ws.directory.appendingPathComponent("outside.png"))
        try ws.sql("CREATE TABLE $S.files (id bigint, path text)")
        try ws.sql("INSERT INTO $S.files VALUES (1, '2026/a.mp4'), (2, '../outside.png'), (3, 'link.png'), (4, '2026/missing.mp4')")
        try ws.writePipeline("paths", """
            name: paths
            source:
              query: SELECT id, path FROM $S.files
              cursor_column: id
              key_column: id
            columns:
              - name: original
                from: path
                passthrough: {}
              - name: remuxed
                from: path
                passthrough: {remux: matroska}
              - name: info
                from: path
                probe: {fields: [container, duration]}
            split: {ratios: {train: 1}}
            media:
              root: \(root.path)
            """)
        let result = try ws.etl("run", "paths")
        #expect(result.status == 0, "\(result.output)")
        let samples = try ws.samples("paths", "v1", split: "train")
        let sample = try #require(samples["1"])
        #expect(sample["original"] == .bytes(try TestMedia.clip()), "passthrough keeps the bytes as uploaded")
        guard case .bytes(let mkv)? = sample["remuxed"] else { Issue.record("no remux"); return }
        #expect(mkv.starts(with: [0x1A, 0x45, 0xDF, 0xA3]), "a Matroska (EBML) file")
        #expect(sample["info_container"] == .string("mov,mp4,m4a,3gp,3g2,mj2"))
        let manifest = try ws.manifest("paths", "v1")
        #expect(manifest.quarantine.byReason == ["media_path_outside_root": 2, "media_file_not_found": 1], "\(manifest.quarantine.byReason)")
    }

    @Test func pathColumnWithoutMediaRootIsQuarantined() throws {
        let ws = try Workspace("noroot")
        try ws.sql("CREATE TABLE $S.files (id bigint, path text)")
        try ws.sql("INSERT INTO $S.files VALUES (1, '/etc/passwd')")
        try ws.writePipeline("noroot", """
            name: noroot
            source: {query: "SELECT id, path FROM $S.files", cursor_column: id, key_column: id}
            columns:
              - {name: raw, from: path, passthrough: {}}
            """)
        let result = try ws.etl("run", "noroot")
        #expect(result.status == 0, "\(result.output)")
        #expect(try ws.manifest("noroot", "v1").quarantine.byReason == ["media_path_without_root": 1])
    }
}
