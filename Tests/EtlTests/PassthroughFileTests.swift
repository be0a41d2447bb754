import Foundation
import MDS
import Testing

/// `passthrough` without remux reads through `Media.readAll`: sizes are checked before a file is read, and empty or
/// over-limit media gets the same reasons whether it is a file under `media.root` or a bytea.
@Suite("etl run: passthrough size checks")
struct PassthroughFileTests {
    @Test func emptyAndOverLimitMediaAreQuarantinedFromFilesAndBytea() throws {
        let ws = try Workspace("passfiles")
        let root = ws.directory.appendingPathComponent("uploads", isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let clip = try TestMedia.clip()
        try Data(clip).write(to: root.appendingPathComponent("ok.mp4"))
        try Data().write(to: root.appendingPathComponent("empty.mp4"))
        // 2 MiB, over `max_input_mb: 1`; sparse, so the test writes nothing to disk for it.
        let big = root.appendingPathComponent("big.mp4")
        FileManager.default.createFile(atPath: big.path, contents: nil)
        let handle = try FileHandle(forWritingTo: big)
        try handle.truncate(atOffset: 2 << 20)
        try handle.close()
        try ws.sql("CREATE TABLE $S.files (id bigint, path text)")
        try ws.sql("INSERT INTO $S.files VALUES (1, 'ok.mp4'), (2, 'empty.mp4'), (3, 'big.mp4'), (4, 'missing.mp4')")
        try ws.sql("CREATE TABLE $S.blobs (id bigint, media bytea)")
        try ws.sql("INSERT INTO $S.blobs VALUES (1, '\(hexLiteral(clip))'), (2, ''::bytea), (3, decode(repeat('00', 1200000), 'hex'))")
        for (name, table, column) in [("files", "files", "path"), ("blobs", "blobs", "media")] {
            try ws.writePipeline(name, """
                name: \(name)
                source: {query: "SELECT id, \(column) FROM $S.\(table)", cursor_column: id, key_column: id}
                columns:
                  - {name: original, from: \(column), passthrough: {}}
                split: {ratios: {train: 1}}
                media:
                  root: \(root.path)
                  limits: {max_input_mb: 1}
                """)
            let result = try ws.etl("run", name)
            #expect(result.status == 0, "\(result.output)")
            #expect(try ws.samples(name, "v1", split: "train")["1"]?["original"] == .bytes(clip), "\(name): the bytes as uploaded")
            var expected = ["media_empty": 1, "media_too_large": 1]
            if name == "files" { expected["media_file_not_found"] = 1 }
            #expect(try ws.manifest(name, "v1").quarantine.byReason == expected, "\(name)")
        }
    }
}
