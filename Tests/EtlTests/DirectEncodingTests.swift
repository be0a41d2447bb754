import Foundation
import MDS
import Postgres
import Testing

/// Plain columns are encoded straight from the COPY rows (`DirectSampleEncoder`); every other row takes the row path.
/// Whatever the path, a version is the same: these runs compare it file by file with runs forced onto the row path
/// (ETL_TEST_DIRECT_ENCODING=0), over every plain type, NULLs with and without a default, values that go to
/// quarantine, duplicate keys, a split group, checkpoints, bytea values whole and in chunks, and a second version that
/// re-reads a window with a late row.
@Suite("etl run: direct encoding of plain columns")
struct DirectEncodingTests {
    static let columns = """
        columns:
          - {name: label, default: "none"}
          - {name: note}
          - {name: code}
          - {name: stars}
          - {name: votes, encoding: int16}
          - {name: big}
          - {name: big_text, from: big, encoding: str}
          - {name: score}
          - {name: conf, encoding: float32}
          - {name: ok}
          - {name: day}
          - {name: at}
          - {name: local, encoding: str}
          - {name: u}
          - {name: amount, encoding: float64}
          - {name: doc}
          - {name: tags}
          - {name: nums}
          - {name: raw}
        split: {ratios: {train: 0.7, val: 0.2, test: 0.1}, group_column: grp}
        shards: {size_limit: 256KiB, checkpoint_every: 1MiB}
        """

    static func insert(_ ws: Workspace, _ range: ClosedRange<Int>, on connection: PostgresConnection? = nil) throws {
        try (connection ?? ws.db).execute("""
            INSERT INTO \(ws.schema).fb (grp, label, note, code, stars, votes, big, score, conf, ok, day, at, local, u, amount, doc, tags, nums, raw)
            SELECT 'user ' || (g % 37),
                   CASE WHEN g % 50 = 0 THEN NULL WHEN g % 11 = 0 THEN '' WHEN g % 7 = 0 THEN 'überlegt 🙂 ' || g
                        ELSE 'label ' || g || repeat(' long', g % 9) END,
                   CASE WHEN g % 70 = 0 THEN NULL ELSE 'note ' || md5(g::text) END,
                   chr(65 + g % 26), (g % 5)::int2, CASE WHEN g % 333 = 0 THEN 100000 ELSE g END, g::int8 * 1000003 - 7,
                   g / 7.0, CASE WHEN g % 401 = 0 THEN 1e300 ELSE g / 3.0 END, g % 3 = 0, date '2026-01-01' + g,
                   CASE WHEN g = 17 THEN timestamptz 'infinity' ELSE timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' END,
                   timestamp '2026-01-01 00:00:00' + g * interval '1 second', md5(g::text)::uuid, (g / 8.0)::numeric(10, 3),
                   jsonb_build_object('g', g, 'tag', 'x' || g), ARRAY['a', NULL, g::text], ARRAY[g, -g],
                   CASE WHEN g % 70 = 0 THEN NULL ELSE substring(decode(repeat(md5(g::text), 400), 'hex') FROM 1 FOR (g * 997) % 12000) END
            FROM generate_series(\(range.lowerBound), \(range.upperBound)) g
            """)
    }

    @Test func directAndRowPathsPublishTheSameVersions() throws {
        let ws = try Workspace("direct")
        try ws.sql("""
            CREATE TABLE $S.fb (id bigserial PRIMARY KEY, grp text, label text, note varchar(40), code char(4), stars int2,
                                votes int4, big int8, score real, conf double precision, ok bool, day date, at timestamptz,
                                local timestamp, u uuid, amount numeric(10, 3), doc jsonb, tags text[], nums int4[], raw bytea)
            """)
        try Self.insert(ws, 1...3000)
        // Every 500th row comes twice (a join that fans out): the repeat is quarantined as a duplicate key.
        let query = "SELECT * FROM $S.fb UNION ALL SELECT * FROM $S.fb WHERE id % 500 = 0"
        for name in ["direct", "rows"] {
            try ws.writePipeline(name, "name: \(name)\nsource: {query: \"\(query)\", cursor_column: id, key_column: id}\n" + Self.columns)
        }
        // 4 KiB chunks: a raw value above that arrives in parts and is assembled, on either path.
        let chunks = ["ETL_TEST_BYTEA_CHUNK": "4096"]
        let rowPath = chunks.merging(["ETL_TEST_DIRECT_ENCODING": "0"]) { $1 }

        // A transaction holds a lower id while the first versions are built: the second versions re-read the window.
        let late = try PostgresConnection(conninfo: "")
        try late.execute("BEGIN")
        try Self.insert(ws, 9001...9001, on: late)
        try late.execute("UPDATE \(ws.schema).fb SET label = 'late' WHERE label LIKE 'label 9001%'")
        try ws.sql("INSERT INTO $S.fb (grp, label, note) SELECT 'user 2', 'after', 'n' FROM generate_series(1, 3)")
        for (name, environment) in [("direct", chunks), ("rows", rowPath)] {
            let run = try ws.etl("run", name, environment: environment)
            #expect(run.status == 0, "\(run.output)")
        }
        try late.execute("COMMIT")
        try Self.insert(ws, 3001...3600)
        for (name, environment) in [("direct", chunks), ("rows", rowPath)] {
            let run = try ws.etl("run", name, environment: environment)
            #expect(run.status == 0, "\(run.output)")
        }

        for version in ["v1", "v2"] {
            let direct = try Self.files(ws.versionDirectory("direct", version))
            #expect(direct.keys.count(where: { $0.hasSuffix(".mds.zstd") }) > 10, "several shards per version")
            #expect(direct == (try Self.files(ws.versionDirectory("rows", version))), "\(version): same shards, indexes, rows.bin, quarantine")
            let (a, b) = (try ws.manifest("direct", version), try ws.manifest("rows", version))
            #expect(a.counts == b.counts && a.quarantine == b.quarantine && a.cursor == b.cursor && a.splits == b.splits)
            #expect(a.stats.sourceBytes == b.stats.sourceBytes)
        }
        // The reference tools on the same rows: mosaicml-streaming's own reader verifies every shard's hashes,
        // decompresses it and decodes every sample of v2; each text and bytea value is what psql prints for its row.
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let mosaicml = try runProcess(repository.appendingPathComponent("scripts/check-mosaicml").path,
                                      [ws.versionDirectory("direct", "v2").path], cwd: repository)
        #expect(mosaicml.status == 0 && mosaicml.stdout.contains("every shard hash matched"), "\(mosaicml.output)")
        let psql = try runProcess("/usr/bin/env", ["psql", "-AtF", "\t", "-c",
            "SELECT id, encode(convert_to(label, 'UTF8'), 'hex'), encode(raw, 'hex') FROM \(ws.schema).fb WHERE label IS NOT NULL AND raw IS NOT NULL"])
        #expect(psql.status == 0, "\(psql.output)")
        let published = try ws.allSamples("direct", "v2")
        var compared = 0
        for line in psql.stdout.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 3, let sample = published[fields[0]]?.values else { continue }
            guard case .string(let label)? = sample["label"], case .bytes(let raw)? = sample["raw"] else {
                Issue.record("sample \(fields[0]) without label or raw")
                continue
            }
            #expect(Array(label.utf8).map { String(format: "%02x", $0) }.joined() == fields[1], "label of \(fields[0])")
            #expect(raw.map { String(format: "%02x", $0) }.joined() == fields[2], "raw of \(fields[0])")
            compared += 1
        }
        #expect(compared > 2000, "\(compared) rows compared with psql")

        let first = try ws.manifest("direct", "v1")
        #expect(first.quarantine.byReason == ["duplicate_key": 6, "null_value": 45, "value_out_of_range": 16])
        let samples = try ws.allSamples("direct", "v2")
        #expect(samples.values.count(where: { $0.values["label"] == .string("late") }) == 1, "the late row, once")
        let v1 = try ws.allSamples("direct", "v1")
        #expect(v1["7"]?.values["label"] == .string("überlegt 🙂 7") && v1["22"]?.values["label"] == .string(""))
        #expect(v1["50"] == nil || v1["50"]?.values["label"] == .string("none"))
        #expect(v1["7"]?.values["big_text"] == .string("7000014"))
    }

    /// Text the server cannot send as UTF-8 (a SQL_ASCII database stores any bytes) fails the run on either path, the
    /// same way, naming the byte; nothing is published. (libpq's session is UTF-8, so the server refuses to convert it;
    /// text that still arrived invalid would fail on the decoder's check, which the direct encoder applies too.)
    @Test func textTheServerCannotSendAsUTF8FailsTheRunOnEitherPath() throws {
        let ws = try Workspace("ascii")
        let database = "etl_ascii_\(UUID().uuidString.prefix(8).lowercased())"
        try ws.sql("CREATE DATABASE \(database) ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'")
        defer { try? ws.sql("DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
        let ascii = try PostgresConnection(conninfo: "dbname=\(database)")
        try ascii.execute("CREATE TABLE t (id int8, note text)")
        try ascii.execute("INSERT INTO t SELECT g, 'note ' || g FROM generate_series(1, 1000) g")
        try ascii.execute("INSERT INTO t VALUES (1001, E'bad \\xff byte')")
        for name in ["direct", "rows"] {
            try ws.writePipeline(name, """
                name: \(name)
                source: {connection: "dbname=\(database)", query: "SELECT id, note FROM t", cursor_column: id, key_column: id}
                columns: [{name: note}]
                """)
        }
        let direct = try ws.etl("run", "direct")
        let rows = try ws.etl("run", "rows", environment: ["ETL_TEST_DIRECT_ENCODING": "0"])
        #expect(direct.status != 0 && direct.status == rows.status, "\(direct.output)")
        for run in [direct, rows] {
            #expect(run.output.contains("22021") && run.output.contains("0xff"), "\(run.output)")
        }
        #expect(ws.versions("direct").isEmpty && ws.versions("rows").isEmpty)
    }

    /// Every file of a version but the manifest and the card (which carry names, times and run ids), by relative path.
    static func files(_ version: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(at: version, includingPropertiesForKeys: nil)
        while let url = enumerator?.nextObject() as? URL {
            guard !url.hasDirectoryPath else { continue }
            let relative = String(url.path.dropFirst(version.path.count + 1))
            if ["manifest.json", "README.md", "checkpoint.json"].contains(relative) { continue }
            files[relative] = try Data(contentsOf: url)
        }
        return files
    }
}
