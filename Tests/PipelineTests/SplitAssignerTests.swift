import Crypto
import Foundation
@testable import Pipeline
import Postgres
import Testing

@Suite struct SplitAssignerTests {
    private let standard = SplitAssigner(seed: "2026", ratios: [("train", 0.8), ("val", 0.1), ("test", 0.1)])

    /// The formula is part of every published dataset: SHA-256(seed, 0, group), the first 8 bytes big-endian, the
    /// top 53 bits as a fraction of 1, compared with the cumulative ratios. Pinned by values computed independently
    /// (Python's hashlib), so a change to the hashing cannot silently move samples between splits.
    @Test func isPinnedToTheDocumentedHash() {
        let expected = ["train", "train", "train", "train", "train", "train", "train", "train", "train", "train",
                        "train", "val", "train", "train", "train", "train", "train", "train", "train", "train",
                        "train", "train", "test", "train", "train", "train", "train", "train", "train", "val",
                        "train", "test", "train", "train", "val", "train", "val", "train", "train", "train"]
        #expect((0..<40).map { standard.split(forGroup: String($0)) } == expected)
        let halves = SplitAssigner(seed: "a", ratios: [("train", 0.5), ("test", 0.5)])
        #expect((0..<12).map { halves.split(forGroup: String($0)) }
                == ["test", "train", "test", "test", "train", "train", "test", "test", "train", "train", "train", "test"])
    }

    @Test func matchesAFreshHashOfSeedAndGroupOnManyGroups() {
        for index in 0..<5000 {
            let group = index % 3 == 0 ? "user-\(index)-é" : String(index * 7919)
            var hasher = SHA256()
            hasher.update(data: Data("2026".utf8) + Data([0]) + Data(group.utf8))
            let prefix = hasher.finalize().prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let unit = Double(prefix >> 11) / Double(UInt64(1) << 53)
            let reference = unit < 0.8 ? "train" : unit < 0.9 ? "val" : "test"
            #expect(standard.split(forGroup: group) == reference)
        }
    }

    @Test func isStableAndHoldsTheRatiosOnAHundredThousandKeys() {
        var counts: [String: Int] = [:]
        for key in 0..<100_000 {
            let split = standard.split(forGroup: String(key))
            counts[split, default: 0] += 1
        }
        for key in stride(from: 0, to: 100_000, by: 997) {
            #expect(standard.split(forGroup: String(key)) == standard.split(forGroup: String(key)))
        }
        // Binomial standard deviation at n = 100k is about 0.13 % for 0.8 and 0.09 % for 0.1: 0.6 % is > 4 sigma.
        #expect(abs(Double(counts["train"]!) / 100_000 - 0.8) < 0.006)
        #expect(abs(Double(counts["val"]!) / 100_000 - 0.1) < 0.006)
        #expect(abs(Double(counts["test"]!) / 100_000 - 0.1) < 0.006)
    }

    @Test func theSeedReshuffles() {
        let a = SplitAssigner(seed: "a", ratios: [("train", 0.5), ("test", 0.5)])
        let b = SplitAssigner(seed: "b", ratios: [("train", 0.5), ("test", 0.5)])
        let differ = (0..<2000).filter { a.split(forGroup: String($0)) != b.split(forGroup: String($0)) }.count
        #expect(differ > 850 && differ < 1150)
    }

    /// Through the row processor: rows of one user (the group column) with different keys all land in the split of
    /// that user, never in two.
    @Test func aGroupNeverStraddlesTwoSplits() throws {
        let config = try loadPipeline("""
            name: g
            source: {query: "SELECT id, user_id, body FROM t", cursor_column: id, key_column: id}
            columns: [{name: body}]
            split: {group_column: user_id, seed: "7", ratios: {train: 0.5, val: 0.25, test: 0.25}}
            """)
        let columns = [PostgresColumn(name: "id", type: PostgresType(oid: 20, name: "int8")),
                       PostgresColumn(name: "user_id", type: PostgresType(oid: 23, name: "int4")),
                       PostgresColumn(name: "body", type: PostgresType(oid: 25, name: "text"))]
        let plan = try SamplePlan(config: config, columns: columns)
        let processor = RowProcessor(plan: plan, splits: SplitAssigner(config.split), context: TransformContext(mediaRoot: nil, limits: .init()))
        var splitOfUser: [Int32: Set<String>] = [:]
        for id in 0..<6000 {
            let user = Int32(id % 150)
            var values = [PostgresValue](repeating: .null, count: plan.selectedColumns.count)
            values[plan.selectedColumns.firstIndex(of: "id")!] = .int64(Int64(id))
            values[plan.selectedColumns.firstIndex(of: "user_id")!] = .int32(user)
            values[plan.selectedColumns.firstIndex(of: "body")!] = .text("row \(id)")
            let row = PostgresRow(columns: plan.selectedColumns.map { name in columns.first { $0.name == name }! }, values: values)
            guard case .sample(let split, let sample, _, _) = processor.process(row) else {
                Issue.record("row \(id) was rejected")
                continue
            }
            #expect(sample["__key__"] == .string(String(id)))
            #expect(sample["body"] == .string("row \(id)"))
            splitOfUser[user, default: []].insert(split)
        }
        #expect(splitOfUser.values.allSatisfy { $0.count == 1 })
        #expect(Set(splitOfUser.values.map { $0.first! }) == ["train", "val", "test"])
    }
}

func loadPipeline(_ yaml: String) throws -> PipelineConfig {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString).yaml").path
    try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try PipelineConfig.load(path: path, environment: [:], workingDirectory: "/tmp")
}

@Suite struct SourceQueryTests {
    private let query = SourceQuery(userQuery: "SELECT id, note FROM t WHERE note <> 'costs $1 > $1::int8'", cursorColumn: "id", keyColumn: "id")

    @Test func theCursorLiteralReplacesOnlyTheWrappersParameter() {
        let sql = query.sql(selecting: ["id", "note"], after: "int8")
        let inlined = SourceQuery.inliningParameters(sql, literals: ["'41'"])
        #expect(inlined == """
            SELECT etl_source."id", etl_source."note" FROM (
            SELECT id, note FROM t WHERE note <> 'costs $1 > $1::int8'
            ) AS etl_source
            WHERE etl_source."id" IS NOT NULL AND etl_source."id" > '41'::int8
            ORDER BY etl_source."id", etl_source."id"
            """)
    }

    @Test func theReReadWindowIsLookedAtKeysOnlyThenFetchedForTheGivenKeys() {
        let keys = query.windowSQL(selecting: [], cursorType: "int8", fromStart: false, keysOnly: true)
        #expect(keys == """
            SELECT etl_source."id", etl_source."id", etl_source."id"::text FROM (
            SELECT id, note FROM t WHERE note <> 'costs $1 > $1::int8'
            ) AS etl_source
            WHERE etl_source."id" IS NOT NULL AND etl_source."id" > $1::int8 AND etl_source."id" <= $2::int8
            ORDER BY etl_source."id", etl_source."id"
            """)
        let rows = query.windowSQL(selecting: ["id", "note"], cursorType: "int8", fromStart: true, keysOnly: false)
        #expect(rows == """
            SELECT etl_source."id", etl_source."note" FROM (
            SELECT id, note FROM t WHERE note <> 'costs $1 > $1::int8'
            ) AS etl_source
            WHERE etl_source."id" IS NOT NULL AND etl_source."id" <= $1::int8 AND etl_source."id"::text = ANY($2::text[])
            ORDER BY etl_source."id", etl_source."id"
            """)
        // Inlined for a COPY: each of the wrapper's parameters, the user's `$1` text untouched.
        #expect(SourceQuery.inliningParameters(rows, literals: ["'1'", "'{\"7\"}'"]) == """
            SELECT etl_source."id", etl_source."note" FROM (
            SELECT id, note FROM t WHERE note <> 'costs $1 > $1::int8'
            ) AS etl_source
            WHERE etl_source."id" IS NOT NULL AND etl_source."id" <= '1'::int8 AND etl_source."id"::text = ANY('{"7"}'::text[])
            ORDER BY etl_source."id", etl_source."id"
            """)
        #expect(SourceQuery.inliningParameters(keys, literals: ["'1'"]) == nil)  // one literal for two parameters
        #expect(postgresTextArray(["7", #"a"b\c"#, ""]) == #"{"7","a\"b\\c",""}"#)
    }

    @Test func anythingElseIsLeftToParameterBinding() {
        #expect(SourceQuery.inliningParameters(query.sql(selecting: ["id"], after: nil), literals: ["'1'"]) == nil)
        #expect(SourceQuery.inliningParameters("SELECT $1::int8", literals: ["'1'"]) == nil)
    }
}
