import Dataset
@testable import Pipeline
import Testing

/// The pure decisions of partitioned runs: which partition a process is, whether a plan still holds, which partitions
/// a commit is missing, and the SQL that picks a partition's rows.
@Suite struct PartitionPlanningTests {
    @Test func aPartitionComesFromTheFlagOrFromTheIndexedJobsEnvironment() throws {
        #expect(try PartitionSpec.resolve("2/8", environment: [:], plannedCount: 8) == PartitionSpec(index: 2, count: 8))
        #expect(try PartitionSpec.resolve("0/1", environment: [:], plannedCount: 1) == PartitionSpec(index: 0, count: 1))
        #expect(try PartitionSpec.resolve("5", environment: [:], plannedCount: 8) == PartitionSpec(index: 5, count: 8))
        // The flag wins over the environment; without the flag the environment decides.
        #expect(try PartitionSpec.resolve("1/3", environment: ["JOB_COMPLETION_INDEX": "2"], plannedCount: 3).index == 1)
        #expect(try PartitionSpec.resolve(nil, environment: ["JOB_COMPLETION_INDEX": "2"], plannedCount: 3) == PartitionSpec(index: 2, count: 3))
    }

    @Test func aPartitionThatCannotBeTheRunsIsRefusedSayingWhy() {
        #expect(throws: PartitionSpec.Problem.noIndex) { try PartitionSpec.resolve(nil, environment: [:], plannedCount: 3) }
        #expect(throws: PartitionSpec.Problem.noIndex) { try PartitionSpec.resolve(nil, environment: ["JOB_COMPLETION_INDEX": "x"], plannedCount: 3) }
        #expect(throws: PartitionSpec.Problem.indexOutOfRange(index: 3, count: 3)) { try PartitionSpec.resolve("3/3", environment: [:], plannedCount: 3) }
        #expect(throws: PartitionSpec.Problem.indexOutOfRange(index: 3, count: 3)) {
            try PartitionSpec.resolve(nil, environment: ["JOB_COMPLETION_INDEX": "3"], plannedCount: 3)
        }
        #expect(throws: PartitionSpec.Problem.countDiffersFromPlan(given: 4, planned: 3)) { try PartitionSpec.resolve("1/4", environment: [:], plannedCount: 3) }
        for bad in ["", "-1/3", "a/3", "1/", "1/0", "1/3/5", "1/x"] {
            #expect(throws: PartitionSpec.Problem.malformed(bad)) { try PartitionSpec.resolve(bad, environment: [:], plannedCount: 3) }
        }
        #expect(PartitionSpec.Problem.noIndex.description.contains("JOB_COMPLETION_INDEX"))
        #expect(throws: PartitionSpec.Problem.countOutOfRange(0)) { try PartitionSpec.checkCount(0) }
        #expect(throws: PartitionSpec.Problem.countOutOfRange(5000)) { try PartitionSpec.checkCount(5000) }
    }

    @Test func runIdsAreSafeDirectoryNames() {
        #expect(RunIdentifier.problem("etl-fb-parts-29412345") == nil)
        #expect(RunIdentifier.problem("20261125T150000Z-1a2b3c4d") == nil)
        for bad in ["", ".hidden", "a/b", "..", "a b", String(repeating: "x", count: 101), "é"] {
            #expect(RunIdentifier.problem(bad) != nil, "\(bad)")
        }
        let made = RunIdentifier.make()
        #expect(RunIdentifier.problem(made) == nil && made.count == 25, "\(made)")
    }

    static func plan(partitions: Int = 3, parent: String? = "v2", latest: String?? = nil, sha: String = "abc") -> RunPlan {
        RunPlan(runId: "r1", dataset: "d", pipeline: .init(name: "fb", path: "p.yaml", configSha256: sha), parent: parent,
                latest: latest ?? parent,
                partitions: partitions, cursor: .init(column: "id", type: "int8", from: "10", to: "20"), columns: [],
                readAfter: "10", readThrough: "20", publishedIn: [],
                source: .init(snapshot: "5:5:", xmin: 5, xmax: 5, takenAt: 0, oldestTransactionStart: 0, standby: false),
                createdAt: "")
    }

    static func record(_ index: Int, partitions: Int = 3, runId: String = "r1", sha: String = "abc") -> PartitionCompletion {
        PartitionCompletion(runId: runId, partition: index, partitions: partitions, configSha256: sha, attempt: "a", sealed: [:],
                            rowsRead: 1, samplesWritten: 1, quarantined: 0, alreadyPublished: 0, sourceBytes: 1,
                            quarantine: .init(count: 0, byReason: [:], file: nil), rowsFile: nil, finishedAt: "")
    }

    @Test func theCommitIsMissingEveryPartitionWithoutARecordOfThisPlan() {
        let plan = Self.plan()
        #expect(RunPlanCheck.missingPartitions(plan: plan, records: [0: Self.record(0), 1: Self.record(1), 2: Self.record(2)]).isEmpty)
        #expect(RunPlanCheck.missingPartitions(plan: plan, records: [0: Self.record(0), 2: Self.record(2)]) == [1])
        #expect(RunPlanCheck.missingPartitions(plan: plan, records: [:]) == [0, 1, 2])
        // Records written for another partition count, another file or another run are not this plan's output.
        #expect(RunPlanCheck.missingPartitions(plan: plan, records: [0: Self.record(0), 1: Self.record(1, partitions: 4), 2: Self.record(2)]) == [1])
        #expect(RunPlanCheck.missingPartitions(plan: plan, records: [0: Self.record(0, sha: "other"), 1: Self.record(1), 2: Self.record(2)]) == [0])
        #expect(RunPlanCheck.missingPartitions(plan: plan, records: [0: Self.record(0), 1: Self.record(1), 2: Self.record(1)]) == [2])
        #expect(RunPlanCheck.missingPartitions(plan: plan, records: [0: Self.record(0, runId: "r0"), 1: Self.record(1), 2: Self.record(2)]) == [0])

        let error = PartitionError.incomplete(runId: "r1", missing: [1, 2], of: 3, pipeline: "fb")
        #expect(error.category == .locked && error.isRetryable)
        #expect(error.description.contains("partitions 1, 2 of 3") && error.description.contains("etl run fb --run r1 --partition 1/3"), "\(error)")
    }

    @Test func aPlanHoldsOnlyOnItsParentAndWithItsPipelineFile() {
        let plan = Self.plan(parent: "v2")
        #expect(RunPlanCheck.parentProblem(plan: plan, latest: "v2") == nil)
        #expect(RunPlanCheck.parentProblem(plan: plan, latest: "v3") == .parentMoved(runId: "r1", planned: "v2", latest: "v3"))
        #expect(RunPlanCheck.parentProblem(plan: Self.plan(parent: nil), latest: nil) == nil)
        #expect(RunPlanCheck.parentProblem(plan: Self.plan(parent: nil), latest: "v1") != nil)
        #expect(RunPlanCheck.parentProblem(plan: plan, latest: "v3")!.category == .locked)
        // A --full plan has no parent but is still made against the newest version.
        #expect(RunPlanCheck.parentProblem(plan: Self.plan(parent: nil, latest: "v2"), latest: "v2") == nil)
        #expect(RunPlanCheck.parentProblem(plan: Self.plan(parent: nil, latest: "v2"), latest: "v3") != nil)
        #expect(RunPlanCheck.configProblem(plan: plan, configSha256: "abc") == nil)
        #expect(RunPlanCheck.configProblem(plan: plan, configSha256: "abd")?.category == .config)
    }

    @Test func aPartitionsQueryReadsThePlannedRangeAndItsHashOnly() {
        let query = SourceQuery(userQuery: "SELECT * FROM t", cursorColumn: "id", keyColumn: "k")
        let sql = query.partitionSQL(selecting: ["id", "k"], cursorType: "int8", afterLiteral: "'10'", throughLiteral: "'20'", partition: 2, of: 8)
        #expect(sql == """
            SELECT etl_source."id", etl_source."k" FROM (
            SELECT * FROM t
            ) AS etl_source
            WHERE etl_source."id" IS NOT NULL AND etl_source."id" > '10'::int8 AND etl_source."id" <= '20'::int8 AND ((COALESCE(hashtextextended((etl_source."k")::text, 0), 0) % 8 + 8) % 8) = 2
            ORDER BY etl_source."id", etl_source."k"
            """)
        // One partition reads what a single run reads, from the start when there is no parent.
        let whole = query.partitionSQL(selecting: ["id"], cursorType: "int8", afterLiteral: nil, throughLiteral: "'20'", partition: 0, of: 1)
        #expect(!whole.contains("hashtextextended") && !whole.contains(" > "))
        #expect(query.maxCursorSQL(after: "int8").hasSuffix("AND etl_source.\"id\" > $1::int8"))
        // A partition's keys-only look at the re-read window: the same bounds, its hash only.
        let keys = query.windowSQL(selecting: [], cursorType: "int8", fromStart: false, keysOnly: true, partition: (index: 2, count: 8))
        #expect(keys.contains("etl_source.\"id\" <= $2::int8 AND ((COALESCE(hashtextextended((etl_source.\"k\")::text, 0), 0) % 8 + 8) % 8) = 2\nORDER BY"), "\(keys)")
        let single = query.windowSQL(selecting: [], cursorType: "int8", fromStart: false, keysOnly: true, partition: (index: 0, count: 1))
        #expect(single == query.windowSQL(selecting: [], cursorType: "int8", fromStart: false, keysOnly: true))
    }
}
