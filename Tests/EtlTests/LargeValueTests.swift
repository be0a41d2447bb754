import Foundation
import MDS
import Testing

/// A bytea larger than one chunk travels the COPY stream in chunks (see `ByteaChunking`) and is put back together
/// before any transform sees it: the shards are byte for byte those of a run that sent every value whole.
@Suite("etl run: large values in chunks")
struct LargeValueTests {
    @Test func chunkedValuesGiveTheShardsOfWholeValues() throws {
        let ws = try Workspace("chunks")
        let clip = try TestMedia.clip()
        try ws.sql("CREATE TABLE $S.uploads (id bigint, clip bytea, raw bytea, note text)")
        // Lengths around the 4 KiB test chunk, NULLs (quarantined alike), and a clip decoded from its assembled bytes.
        try ws.sql("""
            INSERT INTO $S.uploads
            SELECT g, '\(hexLiteral(clip))'::bytea,
                   CASE WHEN g % 9 = 0 THEN NULL ELSE substring(decode(repeat(md5(g::text), 2000), 'hex') FROM 1 FOR (g * 997) % 20000) END,
                   'row ' || g
            FROM generate_series(1, 40) g
            """)
        for name in ["chunked", "whole"] {
            try ws.writePipeline(name, """
                name: \(name)
                source: {query: "SELECT id, clip, raw, note FROM $S.uploads", cursor_column: id, key_column: id}
                columns:
                  - {name: frames, from: clip, video_frames: {fps: 2, width: 32, height: 24, resize: stretch, max_frames: 4}}
                  - {name: raw, from: raw, passthrough: {}}
                  - {name: note, from: note}
                split: {ratios: {train: 1}}
                shards: {size_limit: 64KiB}
                """)
        }
        let chunked = try ws.etl("run", "chunked", environment: ["ETL_TEST_BYTEA_CHUNK": "4096"])
        #expect(chunked.status == 0, "\(chunked.output)")
        let whole = try ws.etl("run", "whole", environment: ["ETL_TEST_BYTEA_CHUNK": "0"])
        #expect(whole.status == 0, "\(whole.output)")
        let files = try shardFiles(ws, "chunked")
        #expect(files.count > 2, "several shards")
        #expect(files == (try shardFiles(ws, "whole")))
        let samples = try ws.samples("chunked", "v1", split: "train")
        #expect(samples.count == 36)  // 4 NULL raws quarantined
        // g = 10: (10 * 997) % 20000 = 9970 bytes, three chunks.
        let stored = try ws.db.query("SELECT raw FROM \(ws.schema).uploads WHERE id = 10").rows[0].values[0]
        guard case .bytea(let bytes) = stored else { throw TestFailure("no bytes stored") }
        #expect(bytes.count == 9970 && samples["10"]?["raw"] == .bytes(Array(bytes)))
        #expect(try ws.manifest("chunked", "v1").quarantine.byReason == ["null_value": 4])
    }

    /// The split's shard files and index.json, by name.
    private func shardFiles(_ ws: Workspace, _ dataset: String) throws -> [String: Data] {
        let directory = ws.versionDirectory(dataset, "v1").appendingPathComponent("train")
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            files[name] = try Data(contentsOf: directory.appendingPathComponent(name))
        }
        return files
    }
}
