import Foundation
import Dataset
import MDS
import Testing

@Suite("etl run: versions, increments, splits")
struct RunTests {
    @Test func firstRunPublishesEveryRowWithItsValues() throws {
        let ws = try Workspace("first")
        try seedFeedback(ws, count: 40)
        try ws.writePipeline("fb", basicPipeline)

        let result = try ws.etl("run", "fb")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains("published fb/v1"))
        #expect(ws.versions("fb") == ["v1"])
        #expect(try String(contentsOf: ws.datasets.appendingPathComponent("fb/LATEST"), encoding: .utf8) == "v1\n")

        let manifest = try ws.manifest("fb", "v1")
        #expect(manifest.parent == nil)
        #expect(manifest.counts.samples == 40 && manifest.counts.newSamples == 40 && manifest.counts.rowsRead == 40)
        #expect(manifest.cursor == .init(column: "id", type: "int8", from: nil, to: "40"))
        #expect(manifest.pipeline.name == "fb" && manifest.pipeline.configSha256.count == 64)
        #expect(manifest.columns.map(\.name) == ["__key__", "created_at", "label", "payload", "rating", "score"])
        #expect(manifest.columns.first { $0.name == "rating" }?.encoding == "int16")

        let samples = try ws.allSamples("fb", "v1")
        #expect(samples.count == 40)
        for id in 1...40 {
            let values = try #require(samples[String(id)]?.values)
            #expect(values["rating"] == .int(Int64(id % 5 + 1)))
            #expect(values["label"] == .string(["good", "bad", "meh"][id % 3]))
            #expect(values["score"] == .float(Double(id) / 8))
            let word = Array(String(format: "%08x", id).utf8).chunked(2).map { UInt8(String(decoding: $0, as: UTF8.self), radix: 16)! }
            #expect(values["payload"] == .bytes(Array([[UInt8]](repeating: word, count: 64 + id % 5).joined())))
            #expect(values["created_at"] == .int(1_767_225_600_000_000 + Int64(id) * 60_000_000))
        }
        // Shards are size-limited, and every one is listed with its sha256 in the manifest and on disk.
        let shardCount = manifest.splits.values.reduce(0) { $0 + $1.shards.count }
        #expect(shardCount > 3)
        for (split, info) in manifest.splits {
            #expect(info.samples == info.shards.reduce(0) { $0 + $1.samples })
            for shard in info.shards {
                let file = ws.versionDirectory("fb", "v1").appendingPathComponent("\(split)/\(shard.basename)")
                #expect(shard.basename.hasSuffix(".mds.zstd"))
                #expect(try sha256Hex(of: file) == shard.sha256)
                #expect(shard.createdBy == "v1")
            }
        }
        #expect(ws.datasetEntries("fb").allSatisfy { !$0.hasPrefix(".staging") })
    }

    @Test func incrementalRunAddsOnlyNewRowsAndSharesParentShards() throws {
        let ws = try Workspace("incr")
        try seedFeedback(ws, count: 30)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        try seedFeedback(ws, from: 31, count: 12)

        let second = try ws.etl("run", "fb")
        #expect(second.status == 0, "\(second.output)")
        #expect(ws.versions("fb") == ["v1", "v2"])
        let v1 = try ws.manifest("fb", "v1"), v2 = try ws.manifest("fb", "v2")
        #expect(v2.parent == "v1")
        #expect(v2.counts.newSamples == 12 && v2.counts.samples == 42 && v2.counts.rowsRead == 12)
        #expect(v2.cursor.from == "30" && v2.cursor.to == "42")

        // Parent shards are the same files (hard links), listed first and still marked as v1's.
        for (split, info) in v1.splits {
            let inherited = Array(try #require(v2.splits[split]).shards.prefix(info.shards.count))
            #expect(inherited == info.shards)
            for shard in info.shards {
                let a = ws.versionDirectory("fb", "v1").appendingPathComponent("\(split)/\(shard.basename)")
                let b = ws.versionDirectory("fb", "v2").appendingPathComponent("\(split)/\(shard.basename)")
                #expect(try inode(a) == inode(b))
            }
        }
        #expect(v2.splits.values.flatMap(\.shards).contains { $0.createdBy == "v2" })
        // v2 alone is a complete dataset: every row, and v1 is untouched.
        #expect(try ws.allSamples("fb", "v2").count == 42)
        #expect(try ws.allSamples("fb", "v1").count == 30)
    }

    @Test func runWithNothingNewPublishesNothingAndSucceeds() throws {
        let ws = try Workspace("noop")
        try seedFeedback(ws, count: 5)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        let again = try ws.etl("run", "fb")
        #expect(again.status == 0)
        #expect(again.stdout.contains("nothing new since v1"))
        #expect(ws.versions("fb") == ["v1"])
        #expect(ws.datasetEntries("fb") == [".lock", "LATEST", "runs.jsonl", "v1"])
    }

    @Test func emptySourcePublishesNothing() throws {
        let ws = try Workspace("empty")
        try seedFeedback(ws, count: 0)
        try ws.writePipeline("fb", basicPipeline)
        let result = try ws.etl("run", "fb")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains("nothing new"))
        #expect(ws.versions("fb").isEmpty)
    }

    @Test func fullRebuildIsANewVersionWithoutParent() throws {
        let ws = try Workspace("full")
        try seedFeedback(ws, count: 20)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        try seedFeedback(ws, from: 21, count: 5)
        #expect(try ws.etl("run", "fb").status == 0)

        let full = try ws.etl("run", "fb", "--full")
        #expect(full.status == 0, "\(full.output)")
        let v3 = try ws.manifest("fb", "v3")
        #expect(v3.parent == nil && v3.cursor.from == nil && v3.cursor.to == "25")
        #expect(v3.counts.samples == 25 && v3.counts.newSamples == 25)
        #expect(v3.splits.values.flatMap(\.shards).allSatisfy { $0.createdBy == "v3" })
        // The rebuild holds the same samples in the same splits as the incremental chain.
        let chain = try ws.allSamples("fb", "v2"), rebuilt = try ws.allSamples("fb", "v3")
        #expect(Set(chain.keys) == Set(rebuilt.keys))
        for (key, sample) in chain {
            #expect(rebuilt[key]?.split == sample.split)
            #expect(rebuilt[key]?.values == sample.values)
        }
    }

    @Test func splitsAreStableByGroupAcrossVersions() throws {
        let ws = try Workspace("split")
        try seedFeedback(ws, count: 200)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        try seedFeedback(ws, from: 201, count: 100)
        #expect(try ws.etl("run", "fb").status == 0)

        let v1 = try ws.allSamples("fb", "v1"), v2 = try ws.allSamples("fb", "v2")
        for (key, sample) in v1 { #expect(v2[key]?.split == sample.split, "sample \(key) changed split") }
        // user_id = id % 10: one group, one split.
        var splitOfUser: [Int: String] = [:]
        for (key, sample) in v2 {
            let user = Int(key)! % 10
            if let seen = splitOfUser[user] { #expect(seen == sample.split, "user \(user) straddles splits") }
            splitOfUser[user] = sample.split
        }
        #expect(Set(splitOfUser.values).count >= 2, "10 users should not all land in one split")
    }

    @Test func sameInputGivesByteIdenticalShards() throws {
        let ws = try Workspace("ident")
        try seedFeedback(ws, count: 60)
        try ws.writePipeline("fb", basicPipeline)
        try ws.writePipeline("fb2", basicPipeline.replacingOccurrences(of: "name: fb", with: "name: fb2"))
        #expect(try ws.etl("run", "fb").status == 0)
        #expect(try ws.etl("run", "fb2").status == 0)
        let a = ws.versionDirectory("fb", "v1"), b = ws.versionDirectory("fb2", "v1")
        let files = try FileManager.default.subpathsOfDirectory(atPath: a.path).filter { $0.hasSuffix(".zstd") || $0.hasSuffix("index.json") }.sorted()
        #expect(files.count > 3)
        #expect(files == (try FileManager.default.subpathsOfDirectory(atPath: b.path).filter { $0.hasSuffix(".zstd") || $0.hasSuffix("index.json") }.sorted()))
        for file in files {
            #expect(FileManager.default.contents(atPath: a.appendingPathComponent(file).path) == FileManager.default.contents(atPath: b.appendingPathComponent(file).path), "\(file) differs")
        }
    }

    @Test func quarantinedRowsAreRecordedAndTheCursorMovesPastThem() throws {
        let ws = try Workspace("quar")
        try seedFeedback(ws, count: 10)
        try ws.sql("UPDATE $S.feedback SET rating = NULL WHERE id IN (3, 7)")
        try ws.sql("UPDATE $S.feedback SET label = 'unknown' WHERE id = 9")
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "  - name: label\n", with: """
              - name: label
                label_map:
                  values: {good: 0, bad: 1, meh: 2}

            """))
        let result = try ws.etl("run", "fb")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains("quarantined 3 rows"))
        let manifest = try ws.manifest("fb", "v1")
        #expect(manifest.counts.newSamples == 7 && manifest.counts.quarantined == 3 && manifest.counts.rowsRead == 10)
        #expect(manifest.quarantine.byReason == ["null_value": 2, "unmapped_label": 1])
        #expect(manifest.cursor.to == "10")
        let lines = try String(contentsOf: ws.versionDirectory("fb", "v1").appendingPathComponent("quarantine.jsonl"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].contains("\"key\":\"3\"") && lines[0].contains("\"reason\":\"null_value\"") && lines[0].contains("\"column\":\"rating\""))
        #expect(lines[2].contains("\"key\":\"9\"") && lines[2].contains("unknown"))
        #expect(try ws.allSamples("fb", "v1")["1"]?.values["label"] == .int(1), "label of row 1 is 'bad'")
    }

    @Test func everySupportedPostgresTypeRoundTrips() throws {
        let ws = try Workspace("types")
        try ws.sql("""
            CREATE TABLE $S.t (id bigint, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, num numeric, txt text, flag bool,
                               blob bytea, ts timestamptz, day date, doc jsonb, tags text[], ints int4[], u uuid)
            """)
        try ws.sql("""
            INSERT INTO $S.t VALUES
              (1, -32768, -2147483648, -9223372036854775808, 1.5, -2.25, 12345.6789, 'héllo ✓', true, '\\x00ff10',
               '1969-12-31 23:59:59.999999+00', '1999-12-31', '{"b": [1, 2], "a": "x"}', ARRAY['a', NULL, 'c"d'], ARRAY[1, -2, 3],
               'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
              (2, 32767, 2147483647, 9223372036854775807, 0, 1e300, -0.5, '', false, '',
               '2262-04-11 23:47:16.854775+00', '2000-02-29', '[]', '{}', '{}', '00000000-0000-0000-0000-000000000000')
            """)
        try ws.writePipeline("types", """
            name: types
            source:
              query: SELECT * FROM $S.t
              cursor_column: id
              key_column: id
            columns:
              - {name: i2}
              - {name: i4}
              - {name: i8}
              - {name: i8_str, from: i8, encoding: str}
              - {name: f4}
              - {name: f8}
              - {name: num}
              - {name: num_f, from: num, encoding: float64}
              - {name: txt}
              - {name: flag}
              - {name: blob}
              - {name: ts}
              - {name: ts_iso, from: ts, encoding: str}
              - {name: day}
              - {name: doc}
              - {name: tags}
              - {name: ints}
              - {name: ints_nd, from: ints, encoding: "ndarray:int32"}
              - {name: u}
              - {name: i2_as_int8, from: i2, encoding: int64}
            split: {ratios: {train: 1}}
            """)
        let result = try ws.etl("run", "types")
        #expect(result.status == 0, "\(result.output)")
        let samples = try ws.samples("types", "v1", split: "train")
        let a = try #require(samples["1"]), b = try #require(samples["2"])
        #expect(a["i2"] == .int(-32768) && b["i2"] == .int(32767))
        #expect(a["i4"] == .int(-2_147_483_648) && b["i4"] == .int(2_147_483_647))
        #expect(a["i8"] == .int(.min) && b["i8"] == .int(.max))
        #expect(a["i8_str"] == .string("-9223372036854775808"))
        #expect(a["f4"] == .float(1.5) && b["f8"] == .float(1e300))
        #expect(a["num"] == .string("12345.6789") && b["num"] == .string("-0.5"))
        #expect(a["num_f"] == .float(12345.6789))
        #expect(a["txt"] == .string("héllo ✓") && b["txt"] == .string(""))
        #expect(a["flag"] == .int(1) && b["flag"] == .int(0))
        #expect(a["blob"] == .bytes([0, 255, 16]) && b["blob"] == .bytes([]))
        #expect(a["ts"] == .int(-1) && a["ts_iso"] == .string("1969-12-31T23:59:59.999999Z"))
        #expect(b["ts_iso"] == .string("2262-04-11T23:47:16.854775Z"))
        #expect(a["day"] == .string("1999-12-31") && b["day"] == .string("2000-02-29"))
        guard case .json(let doc)? = a["doc"] else { Issue.record("doc is not json"); return }
        let parsed = try JSONSerialization.jsonObject(with: Data(doc.utf8)) as? [String: Any]
        #expect(parsed?["a"] as? String == "x")
        #expect(a["tags"] == .json(#"["a",null,"c\"d"]"#) && b["tags"] == .json("[]"))
        #expect(a["ints"] == .json("[1,-2,3]"))
        #expect(a["ints_nd"] == .ndarray(NDArray(dtype: .int32, shape: [3], data: [1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 3, 0, 0, 0])))
        #expect(a["u"] == .string("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))
        #expect(a["i2_as_int8"] == .int(-32768))
        let manifest = try ws.manifest("types", "v1")
        let encodings = Dictionary(uniqueKeysWithValues: manifest.columns.map { ($0.name, $0.encoding) })
        #expect(encodings["i2"] == "int16" && encodings["f4"] == "float32" && encodings["flag"] == "uint8" && encodings["ts"] == "int64")
        #expect(encodings["doc"] == "json" && encodings["tags"] == "json" && encodings["ints_nd"] == "ndarray:int32" && encodings["blob"] == "bytes")
    }

    @Test func keysRepeatedByAJoinAreQuarantinedOnce() throws {
        let ws = try Workspace("dup")
        try seedFeedback(ws, count: 6)
        try ws.sql("CREATE TABLE $S.tags (feedback_id bigint, tag text)")
        try ws.sql("INSERT INTO $S.tags VALUES (2, 'a'), (2, 'b'), (2, 'c'), (5, 'x')")
        // Row 2 fans out to three rows.
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(
            of: "FROM $S.feedback", with: "FROM $S.feedback f LEFT JOIN $S.tags t ON t.feedback_id = f.id"))
        let result = try ws.etl("run", "fb")
        #expect(result.status == 0, "\(result.output)")
        let manifest = try ws.manifest("fb", "v1")
        #expect(manifest.counts.newSamples == 6 && manifest.counts.rowsRead == 8)
        #expect(manifest.quarantine.byReason == ["duplicate_key": 2])
        #expect(try ws.allSamples("fb", "v1").count == 6)
    }

    @Test func columnsThePipelineDoesNotUseAreNotFetched() throws {
        let ws = try Workspace("unused")
        try seedFeedback(ws, count: 4)
        // interval has no MDS mapping: fetching it would fail the run, but nothing reads it.
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "SELECT id,", with: "SELECT interval '1 day' * id AS waited, id,"))
        let result = try ws.etl("run", "fb")
        #expect(result.status == 0, "\(result.output)")
        #expect(try ws.manifest("fb", "v1").counts.samples == 4)
    }

    @Test func listShowsPipelinesAndTheirNewestVersion() throws {
        let ws = try Workspace("list")
        try seedFeedback(ws, count: 5)
        try ws.writePipeline("fb", basicPipeline)
        try ws.writePipeline("broken", "name: broken\nsource: 3\n")
        #expect(try ws.etl("run", "fb").status == 0)
        let list = try ws.etl("list")
        #expect(list.status == 0, "\(list.output)")
        let lines = list.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("fb ") && $0.contains(" v1 ") && $0.contains(" 5 ") })
        #expect(lines.contains { $0.hasPrefix("broken") && $0.contains("invalid") })
    }

    @Test func inspectShowsCountsSplitsShardsCursorAndSchema() throws {
        let ws = try Workspace("inspect")
        try seedFeedback(ws, count: 25)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        let text = try ws.etl("inspect", "fb")
        #expect(text.status == 0, "\(text.output)")
        for needle in ["fb@v1", "cursor     id (int8): start → 25", "25 in all", "SPLIT", "train", "SHARD", "COLUMN", "payload", "bytes"] {
            #expect(text.stdout.contains(needle), "inspect output lacks '\(needle)'")
        }
        let json = try ws.etl("inspect", "fb@v1", "--json")
        #expect(json.status == 0)
        let manifest = try DatasetManifest.decode(Data(json.stdout.utf8))
        #expect(manifest.version == "v1" && manifest.counts.samples == 25)
        // Shard names are content-addressed (shard.<sha256 prefix>.mds.zstd); inspect lists each one.
        for shard in manifest.splits.values.flatMap(\.shards) {
            #expect(text.stdout.contains(shard.basename), "inspect output lacks \(shard.basename)")
            #expect(shard.basename.wholeMatch(of: /shard\.[0-9a-f]{16}\.mds\.zstd/) != nil, "\(shard.basename)")
        }
        let byPath = try ws.etl("inspect", ws.versionDirectory("fb", "v1").path)
        #expect(byPath.status == 0 && byPath.stdout.contains("fb@v1"))
        let missing = try ws.etl("inspect", "fb@v9")
        #expect(missing.status == 7)
        #expect(missing.stderr.contains("no version 'v9'"))
    }
}

func sha256Hex(of url: URL) throws -> String {
    let result = try runProcess("/usr/bin/sha256sum", [url.path])
    return String(result.stdout.prefix(64))
}

func inode(_ url: URL) throws -> UInt64 {
    let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
    return (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
}

extension Array {
    func chunked(_ size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
