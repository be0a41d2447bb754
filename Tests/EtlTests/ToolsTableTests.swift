import Foundation
import Dataset
import Testing

private let tinyPipeline = """
    name: tiny
    source:
      query: SELECT id, rating, label FROM $S.feedback WHERE id <= 3
      cursor_column: id
      key_column: id
    columns:
      - name: rating
      - name: label
    split: {ratios: {train: 1}}
    """

/// Whole printed outputs of the table commands, compared line by line after `normalizedOutput` (dates and hashes
/// masked, widths kept), so a changed column, a stray line or a broken alignment fails.
@Suite("table output: inspect, list, datasets")
struct ToolsTableTests {
    private func tiny(_ ws: Workspace) throws -> DatasetManifest {
        try seedFeedback(ws, count: 5)
        try ws.writePipeline("tiny", tinyPipeline)
        let run = try ws.etl("run", "tiny")
        #expect(run.status == 0, "\(run.output)")
        return try ws.manifest("tiny", "v1")
    }

    @Test func inspectPrintsTheWholeVersion() throws {
        let ws = try Workspace("tblinspect")
        let manifest = try tiny(ws)
        let shard = try #require(manifest.splits["train"]?.shards.first)
        let result = try ws.etl("inspect", "tiny")
        #expect(result.status == 0, "\(result.output)")
        expectSameOutput(normalizedOutput(result.stdout, ws), """
            tiny@v1  (parent: none, created YYYY-MM-DDTHH:MM:SS.sssZ, etl \(manifest.toolVersion))
            pipeline   tiny  pipelines/tiny.yaml  config sha256 ############…
            cursor     id (int8): start → 3
            samples    3 in all, 3 new; 3 rows read, 0 quarantined

            SPLIT  SAMPLES  NEW  SHARDS  BYTES
            train  3        3    1       \(shard.bytes) B

            SHARD                                  SAMPLES  BYTES  RAW    SHA256        FROM
            train/shard.################.mds.zstd  3        \(shard.bytes) B  \(shard.rawBytes) B  ############  v1

            COLUMN   ENCODING  SOURCE  TRANSFORM
            __key__  str       id      key
            label    str       label   value
            rating   int16     rating  value

            """)
    }

    @Test func listAndDatasetsPrintAlignedTablesAndJSON() throws {
        let ws = try Workspace("tbllist")
        let manifest = try tiny(ws)
        try seedFeedback(ws, from: 6, count: 0)
        try ws.sql("INSERT INTO $S.feedback SELECT 100, 1, 2, 'good', 1, '\\x00'::bytea, now()")
        try ws.writePipeline("tiny", tinyPipeline.replacingOccurrences(of: "WHERE id <= 3", with: "WHERE id <= 3 OR id = 100"))
        #expect(try ws.etl("run", "tiny").status == 0)
        try ws.writePipeline("zzz", "name: zzz\nsource: 3\n")
        #expect(try ws.etl("pin", "tiny@v1").status == 0)

        let list = try ws.etl("list")
        #expect(list.status == 0, "\(list.output)")
        expectSameOutput(normalizedOutput(list.stdout, ws), """
            PIPELINE  DATASET  LATEST                         SAMPLES  CREATED                   CURSOR
            tiny      tiny     v2                             4        YYYY-MM-DDTHH:MM:SS.sssZ  100
            zzz       -        invalid: run etl validate zzz

            """)
        let listJSON = try ws.etl("list", "--json")
        let entries = try JSONSerialization.jsonObject(with: Data(listJSON.stdout.utf8)) as? [[String: Any]]
        #expect(entries?.count == 2 && entries?[0]["latest"] as? String == "v2" && entries?[0]["samples"] as? Int == 4)
        #expect(entries?[1]["problem"] as? String == "invalid: run etl validate zzz")

        let v2 = try ws.manifest("tiny", "v2")
        let size = { (m: DatasetManifest) in "\(m.splits.values.flatMap(\.shards).reduce(0) { $0 + $1.bytes }) B" }
        let datasets = try ws.etl("datasets")
        #expect(datasets.status == 0, "\(datasets.output)")
        expectSameOutput(normalizedOutput(datasets.stdout, ws), """
            DATASET  VERSION  CREATED                   PARENT  TRAIN  SAMPLES  SIZE   PINNED  REDACTIONS
            tiny     v1       YYYY-MM-DDTHH:MM:SS.sssZ  -       3      3        \(size(manifest))  yes     0
            tiny     v2       YYYY-MM-DDTHH:MM:SS.sssZ  v1      4      4        \(size(v2))          0

            """)
        let json = try ws.etl("datasets", "--json")
        let catalog = try JSONDecoder().decode(DatasetCatalog.self, from: Data(json.stdout.utf8))
        #expect(catalog.datasets.map(\.dataset) == ["tiny"])
        #expect(catalog.datasets[0].versions.map(\.version) == ["v1", "v2"])
        #expect(catalog.datasets[0].versions.map(\.pinned) == [true, false])
        #expect(catalog.datasets[0].versions[1].splits == ["train": 4] && catalog.datasets[0].versions[1].parent == "v1")

        // After a forget, the redaction shows in datasets and inspect.
        #expect(try ws.etl("forget", "tiny", "--key", "2").status == 0)
        #expect(try ws.etl("datasets").stdout.split(separator: "\n").dropFirst().allSatisfy { $0.hasSuffix("  1") })
        let inspect = try ws.etl("inspect", "tiny@v1")
        let tail = normalizedOutput(inspect.stdout, ws).split(separator: "\n").suffix(2).joined(separator: "\n")
        expectSameOutput(tail, """
            REDACTED AT           SAMPLES  METHOD  SHARDS REWRITTEN  REASON
            YYYY-MM-DDTHH:MM:SSZ  1        key     1                 forget request
            """)
    }
}
