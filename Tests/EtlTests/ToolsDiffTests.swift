import Foundation
import Dataset
import MDS
import Testing

@Suite("etl diff: added, removed, changed by key")
struct ToolsDiffTests {
    @Test func diffMatchesAHandMadeExpectationAndReadsOnlyShardsThatDiffer() throws {
        let ws = try Workspace("diff")
        try seedFeedback(ws, count: 150)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        // The source changes, all within user 5's group (one split, so the other splits keep their shards): row 5
        // goes, row 15 gets another label and score, row 25 other bytes; rows 151-153 arrive.
        try ws.sql("DELETE FROM $S.feedback WHERE id = 5")
        try ws.sql("UPDATE $S.feedback SET label = 'changed', score = 99 WHERE id = 15")
        try ws.sql("UPDATE $S.feedback SET payload = '\\x00ff'::bytea WHERE id = 25")
        try seedFeedback(ws, from: 151, count: 3)
        // A rebuild: unchanged stretches give byte-identical shards with the same content-addressed names.
        #expect(try ws.etl("run", "fb", "--full").status == 0)

        let json = try ws.etl("diff", "fb@v1", "fb@v2", "--json")
        #expect(json.status == 0, "\(json.output)")
        let diff = try JSONDecoder().decode(VersionDiff.self, from: Data(json.stdout.utf8))
        let splitOf = try ws.allSamples("fb", "v1").mapValues(\.split)
        #expect(diff.added == ["151", "152", "153"])
        #expect(diff.removed == ["5"])
        #expect(diff.changed == [
            .init(key: "15", split: splitOf["15"]!, columns: ["label", "score"]),
            .init(key: "25", split: splitOf["25"]!, columns: ["payload"]),
        ])
        #expect(diff.changedColumns == ["label": 1, "score": 1, "payload": 1])

        // Cost follows what differs: shards both versions list were not read, and there were some.
        let shared = diff.splits.values.reduce(0) { $0 + $1.sharedShards }
        let read = diff.splits.values.reduce(0) { $0 + $1.readShards }
        let total = try ws.shardFiles("fb", "v1").count + ws.shardFiles("fb", "v2").count
        #expect(shared > 0 && read + 2 * shared == total, "shared \(shared), read \(read), total \(total)")

        // The text form: summary line, per-split table, per-column table, the keys.
        let text = try ws.etl("diff", "fb@v1", "fb@v2")
        #expect(text.status == 0)
        var rows = [["SPLIT", "ADDED", "REMOVED", "CHANGED", "SHARDS SHARED", "SHARDS READ"]]
        for (name, s) in diff.splits.sorted(by: { $0.key < $1.key }) {
            rows.append([name, String(s.added), String(s.removed), String(s.changed), String(s.sharedShards), String(s.readShards)])
        }
        let expected = """
            fb@v1 → fb@v2: 3 added, 1 removed, 2 changed

            \(TextTable.render(rows))

            COLUMN   CHANGED
            label    1
            payload  1
            score    1

            added: 151 152 153
            removed: 5
            changed: 15(label,score) 25(payload)

            """
        expectSameOutput(text.stdout, expected)

        #expect(try ws.etl("diff", "fb@v1", "other@v2").status == 2)
        #expect(try ws.etl("diff", "fb@v1", "fb@v9").status == 7)
    }
}
