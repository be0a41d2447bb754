import Foundation
import Testing

@Suite("etl validate")
struct ValidateTests {
    @Test func validPipelinePasses() throws {
        let ws = try Workspace("valid")
        try seedFeedback(ws, count: 1)
        try ws.writePipeline("fb", basicPipeline)
        let result = try ws.etl("validate", "fb")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains("ok"))
    }

    @Test func reportsEveryProblemAtOnceWithLocations() throws {
        let ws = try Workspace("invalid")
        try ws.writePipeline("bad", """
            name: bad
            sauce: 1
            source:
              query: SELECT 1
              cursor_column: id
              connection: "${ETL_TEST_SURELY_UNSET_VAR}"
            columns:
              - name: a
                encodng: int32
              - name: b
                encoding: int33
              - name: c
                video_frames: {fps: 0, width: 10, height: 10, resize: squash}
            split:
              ratios: {train: 0.7, test: 0.2}
            shards:
              size_limit: lots
              compression: gzip
            """)
        let result = try ws.etl("validate", "bad", "--offline")
        #expect(result.status == 2, "\(result.output)")
        let expected = [
            "pipelines/bad.yaml:2:1: error: unknown key 'sauce' (did you mean 'source'?)",
            "pipelines/bad.yaml:3:1: error: missing required key 'source.key_column'",
            "pipelines/bad.yaml:6:15: error: environment variable 'ETL_TEST_SURELY_UNSET_VAR' is not set",
            "pipelines/bad.yaml:9:5: error: unknown key 'columns[0].encodng' (did you mean 'encoding'?)",
            "pipelines/bad.yaml:11:15: error: unknown MDS encoding 'int33'",
            "pipelines/bad.yaml:13:25: error: 'columns[2].video_frames.fps' must be between 0.01 and 240.0, found 0",
            "pipelines/bad.yaml:13:59: error: 'columns[2].video_frames.resize' must be one of pad, crop, stretch, found 'squash'",
            "pipelines/bad.yaml:15:11: error: split ratios must sum to 1, they sum to 0.9",
            "pipelines/bad.yaml:17:15: error: 'shards.size_limit' must be a size",
            "pipelines/bad.yaml:18:16: error: 'shards.compression' must be none, zstd, or zstd:<level 1-22>, found 'gzip'",
        ]
        for line in expected {
            #expect(result.stderr.contains(line), "missing: \(line)\n--- got:\n\(result.stderr)")
        }
        // In file order, so the user can fix them top to bottom.
        let positions = expected.compactMap { result.stderr.range(of: $0)?.lowerBound }
        #expect(positions == positions.sorted())
        #expect(result.stderr.contains("10 errors in the pipeline file"))
    }

    @Test func yamlSyntaxErrorIsLocated() throws {
        let ws = try Workspace("yaml")
        try ws.writePipeline("y", "name: y\nsource: {query: [unclosed\n")
        let result = try ws.etl("validate", "y")
        #expect(result.status == 2)
        #expect(result.stderr.contains("pipelines/y.yaml:3:1: error: invalid YAML"), "\(result.stderr)")
    }

    @Test func missingFileIsReported() throws {
        let ws = try Workspace("nofile")
        let result = try ws.etl("validate", "nope")
        #expect(result.status == 2)
        #expect(result.stderr.contains("pipelines/nope.yaml:1:1: error: cannot read the pipeline file"))
    }

    @Test func typesThatCannotBeMappedAreNamed() throws {
        let ws = try Workspace("types")
        try ws.sql("CREATE TABLE $S.geo (id bigint, spot point, note text)")
        try ws.writePipeline("geo", """
            name: geo
            source:
              query: SELECT id, spot, note FROM $S.geo
              cursor_column: id
              key_column: id
            columns:
              - name: spot
              - name: note
                encoding: int32
            """)
        let result = try ws.etl("validate", "geo")
        #expect(result.status == 2, "\(result.output)")
        #expect(result.stderr.contains("pipelines/geo.yaml:7:11: error: column 'spot' has PostgreSQL type point, which etl cannot map to an MDS encoding"))
        #expect(result.stderr.contains("pipelines/geo.yaml:8:11: error: column 'note' (from 'note', text): encoding 'int32' cannot hold a text column"))
    }

    @Test func usageErrorsExit2() throws {
        let ws = try Workspace("usage")
        let missing = try ws.etl("run")
        #expect(missing.status == 2 && missing.stderr.contains("Missing expected argument"), "\(missing.output)")
        let workers = try ws.etl("run", "fb", "--workers", "0")
        #expect(workers.status == 2 && workers.stderr.contains("--workers must be between 1 and 256"), "\(workers.output)")
        #expect(try ws.etl("--help").status == 0)
    }

    @Test func unreachableDatabaseIsReportedByValidate() throws {
        let ws = try Workspace("vunreach")
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "source:\n", with: "source:\n  connection: \"host=127.0.0.1 port=1 connect_timeout=2\"\n"))
        #expect(try ws.etl("validate", "fb").status == 3)
        #expect(try ws.etl("validate", "fb", "--offline").status == 0)
    }
}
