import Foundation
import Dataset
import MDS
import Testing

/// Uploads whose media repeats: row g carries the bytes of "content" `contentOf(g)`.
private func seedUploads(_ ws: Workspace, from first: Int, count: Int, content: String) throws {
    if first == 1 {
        try ws.sql("CREATE TABLE $S.uploads (id bigint PRIMARY KEY, user_id bigint NOT NULL, media bytea NOT NULL)")
    }
    try ws.sql("""
        INSERT INTO $S.uploads
        SELECT g, g % 7, decode(repeat(lpad(to_hex(\(content)), 8, '0'), 24), 'hex')
        FROM generate_series(\(first), \(first + count - 1)) AS g
        """)
}

/// The bytes `seedUploads` gives content value `value`.
private func uploadBytes(_ value: Int) -> [UInt8] {
    let word = String(format: "%08x", value)
    let bytes = stride(from: 0, to: 8, by: 2).map { UInt8(word.dropFirst($0).prefix(2), radix: 16)! }
    return Array([[UInt8]](repeating: bytes, count: 24).joined())
}

private let uploadsPipeline = """
    name: uploads
    source:
      query: SELECT id, user_id, media FROM $S.uploads
      cursor_column: id
      key_column: id
    columns:
      - name: user_id
      - name: media
        passthrough: {}
    dedupe: {column: media}
    split:
      group_column: user_id
      seed: s1
      ratios: {train: 0.6, val: 0.2, test: 0.2}
    shards:
      size_limit: 2KiB
    """

@Suite("dedupe: a sample whose content the lineage published is not written again")
struct DedupeTests {
    @Test func dedupeAcrossThreeVersions() throws {
        let ws = try Workspace("dedupe")
        try ws.writePipeline("uploads", uploadsPipeline)
        // v1: rows 1-30 carry 20 distinct contents (g % 20): rows 21-30 repeat rows 1-10 within the run.
        try seedUploads(ws, from: 1, count: 30, content: "g % 20")
        let first = try ws.etl("run", "uploads")
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains("skipped 10 rows whose media was already published"), "\(first.output)")
        // v2: rows 31-50 carry g % 25: only 20-24 (rows 45-49) are new.
        try seedUploads(ws, from: 31, count: 20, content: "g % 25")
        #expect(try ws.etl("run", "uploads").status == 0)
        // v3: rows 51-60 carry g % 30: only 25-29 (rows 55-59) are new.
        try seedUploads(ws, from: 51, count: 10, content: "g % 30")
        let third = try ws.etl("run", "uploads", "--log-format", "json")
        #expect(third.status == 0, "\(third.output)")
        // The run's events count them too (the JSON log's finished line).
        let finished = third.stderr.split(separator: "\n").first { $0.contains("run.finished") }.map(String.init) ?? ""
        let fields = try JSONSerialization.jsonObject(with: Data(finished.utf8)) as? [String: Any]
        #expect("\(fields?["deduplicated"] ?? "none")" == "5", "\(finished)")
        // And the run ledger, one record per run.
        let records = try OpsLedgerTests().ledger(ws, "uploads")
        #expect(records.map { $0["deduplicated"] as? Int } == [10, 15, 5], "\(records.map { $0["deduplicated"] ?? "none" })")

        let expected: [(String, Int, Int, Int)] = [("v1", 20, 20, 10), ("v2", 25, 5, 15), ("v3", 30, 5, 5)]
        for (version, samples, new, deduplicated) in expected {
            let manifest = try ws.manifest("uploads", version)
            #expect(manifest.counts.samples == samples && manifest.counts.newSamples == new, "\(version): \(manifest.counts)")
            #expect(manifest.counts.deduplicated == deduplicated && manifest.counts.rowsRead == new + deduplicated, "\(version): \(manifest.counts)")
            #expect(manifest.keyIndex == KeyIndex.fileName)
        }
        // Each content is in v3 once, under the first key that carried it.
        let v3 = try ws.allSamples("uploads", "v3")
        var keyOfContent: [[UInt8]: String] = [:]
        for (key, sample) in v3 {
            guard case .bytes(let bytes)? = sample.values["media"] else { throw TestFailure("media of \(key) is not bytes") }
            #expect(keyOfContent[bytes] == nil, "content of \(key) is also in \(keyOfContent[bytes] ?? "")")
            keyOfContent[bytes] = key
        }
        #expect(keyOfContent.count == 30)
        #expect(keyOfContent[uploadBytes(0)] == "20" && keyOfContent[uploadBytes(7)] == "7")
        #expect(keyOfContent[uploadBytes(22)] == "47" && keyOfContent[uploadBytes(27)] == "57")
        // Deduplicated rows were read (rows.bin has them), so a re-read does not bring them back: nothing new.
        let again = try ws.etl("run", "uploads")
        #expect(again.status == 0 && ws.versions("uploads") == ["v1", "v2", "v3"], "\(again.output)")
        #expect(try ws.etl("verify", "uploads", "--all").status == 0)

        // A rebuild without parent keeps the first of each content, the same 30 samples.
        let rebuild = try ws.etl("run", "uploads", "--full")
        #expect(rebuild.status == 0, "\(rebuild.output)")
        let v4 = try ws.manifest("uploads", "v4")
        #expect(v4.counts.samples == 30 && v4.counts.deduplicated == 30)
        #expect(Set(try ws.allSamples("uploads", "v4").keys) == Set(v3.keys))
    }

    @Test func aDedupeColumnMustBeAnOutputColumn() throws {
        let ws = try Workspace("dedupeconfig")
        try ws.writePipeline("uploads", uploadsPipeline.replacingOccurrences(of: "dedupe: {column: media}", with: "dedupe: {column: mdia}"))
        let result = try ws.etl("validate", "uploads", "--offline")
        #expect(result.status == 2)
        #expect(result.output.contains("uploads.yaml:10:18: error: dedupe.column 'mdia' is not one of the output columns (did you mean 'media'?)"), "\(result.output)")
        // The short form names the column alone.
        try ws.writePipeline("short", uploadsPipeline.replacingOccurrences(of: "dedupe: {column: media}", with: "dedupe: media"))
        let short = try ws.etl("validate", "short", "--offline")
        #expect(short.status == 0, "\(short.output)")
    }
}
