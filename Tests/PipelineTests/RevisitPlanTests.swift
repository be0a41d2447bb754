import Dataset
@testable import Pipeline
import Testing

@Suite struct RevisitPlanTests {
    /// A version whose snapshot had xids below `xmin` settled and was taken at `takenAt`, with the oldest transaction
    /// open just before it starting at `oldest` (nil: unknown, as on a standby).
    static func version(_ n: Int, from: String?, to: String, xmin: Int64, xmax: Int64, takenAt: Int64, oldest: Int64?,
                        snapshot: Bool = true) -> DatasetManifest {
        var manifest = DatasetManifest(
            dataset: "d", version: "v\(n)", parent: n > 1 ? "v\(n - 1)" : nil, runId: "r\(n)", createdAt: "", toolVersion: "t",
            pipeline: .init(name: "d", path: "p", configSha256: "c"), cursor: .init(column: "id", type: "int8", from: from, to: to),
            counts: .init(samples: 0, newSamples: 0, rowsRead: 0, quarantined: 0), splits: [:], columns: [],
            quarantine: .init(count: 0, byReason: [:], file: nil), stats: .init(durationSeconds: 0, bytesWritten: 0, sourceBytes: 0))
        if snapshot {
            manifest.source = .init(snapshot: "\(xmin):\(xmax):", xmin: xmin, xmax: xmax, takenAt: takenAt, oldestTransactionStart: oldest, standby: oldest == nil)
            manifest.rowsFile = "rows.bin"
        }
        return manifest
    }

    /// v1 (→10, taken at t=100, xmax 50), v2 (→20, t=200, xmax 60), then the parent v3 (→30, t=300, xmin/xmax given).
    static func history(parentXmin: Int64 = 68, oldest: Int64?) -> [DatasetManifest] {
        [version(3, from: "20", to: "30", xmin: parentXmin, xmax: 70, takenAt: 300, oldest: oldest),
         version(2, from: "10", to: "20", xmin: 55, xmax: 60, takenAt: 200, oldest: 199),
         version(1, from: nil, to: "10", xmin: 45, xmax: 50, takenAt: 100, oldest: 99)]
    }

    @Test func withNoTransactionOpenAtTheParentThePreviousRangeIsCheckedOnce() {
        // Nothing was open just before v3's snapshot (t=299): what v3 could not see began after v2 was taken.
        #expect(RevisitPlan.plan(history: Self.history(oldest: 299)) == RevisitPlan(after: "20", publishedIn: ["v3"], notice: nil))
    }

    @Test func aTransactionOpenSinceEarlierWidensTheWindowByStartTime() {
        // A transaction open at v3 began at t=150: after v1 was taken, before v2.
        #expect(RevisitPlan.plan(history: Self.history(oldest: 150)) == RevisitPlan(after: "10", publishedIn: ["v3", "v2"], notice: nil))
    }

    @Test func onAStandbyTheTransactionIdsDecideWithOneRunToSpare() {
        // v3's xmin 62 ≥ v2's xmax 60: none of v3's invisible transactions had an id when v2 read → from v2's cursor.from.
        #expect(RevisitPlan.plan(history: Self.history(parentXmin: 62, oldest: nil)) == RevisitPlan(after: "10", publishedIn: ["v3", "v2"], notice: nil))
        // xmin 58 < 60: back to v1 (xmax 50), whose range starts at the beginning: from v1's cursor.to, one step short.
        #expect(RevisitPlan.plan(history: Self.history(parentXmin: 58, oldest: nil)) == RevisitPlan(after: "10", publishedIn: ["v3", "v2", "v1"], notice: nil))
    }

    @Test func aTransactionOlderThanEveryVersionReachesBackToTheStart() {
        let plan = RevisitPlan.plan(history: Self.history(oldest: 50))
        #expect(plan.after == nil && plan.publishedIn == ["v3", "v2", "v1"])
    }

    @Test func versionsWithoutASnapshotLimitTheSearchAndSaySo() {
        let old = [Self.version(2, from: "10", to: "20", xmin: 0, xmax: 0, takenAt: 0, oldest: nil, snapshot: false)]
        let plan = RevisitPlan.plan(history: old)
        #expect(plan.after == "20" && plan.publishedIn.isEmpty && plan.notice != nil)
        let mixed = [Self.history(oldest: 150)[0], old[0]]
        let partial = RevisitPlan.plan(history: mixed)
        #expect(partial.after == "20" && partial.publishedIn == ["v3"] && partial.notice != nil)
    }

    @Test func decimalCursorsCompareByValue() {
        #expect(CursorPoint.decimal("9.5") < CursorPoint.decimal("10"))
        #expect(CursorPoint.decimal("-10") < CursorPoint.decimal("-9.99"))
        #expect(!(CursorPoint.decimal("1.50") < CursorPoint.decimal("1.5")) && !(CursorPoint.decimal("1.5") < CursorPoint.decimal("1.50")))
        #expect(CursorPoint.integer(3) < CursorPoint.decimal("3.01"))
    }
}

@Suite struct RetryPolicyTests {
    @Test func delaysGrowExponentiallyWithJitterAndACap() {
        let policy = RetryPolicy(attempts: 6, initialDelaySeconds: 1, maxDelaySeconds: 10)
        #expect(policy.delay(beforeRetry: 1, unit: 1) == 1)
        #expect(policy.delay(beforeRetry: 1, unit: 0) == 0.5)
        #expect(policy.delay(beforeRetry: 3, unit: 1) == 4)
        #expect(policy.delay(beforeRetry: 5, unit: 1) == 10, "capped")
        #expect(policy.delay(beforeRetry: 60, unit: 0.5) == 7.5, "no overflow far out")
    }

    @Test func onlyTransientSourceFaultsAreRetried() {
        #expect(RetryPolicy.shouldRetry(RunFailureReport(category: .unreachable, isRetryable: true, message: "")))
        #expect(RetryPolicy.shouldRetry(RunFailureReport(category: .query, isRetryable: true, message: "40001")))
        #expect(!RetryPolicy.shouldRetry(RunFailureReport(category: .query, isRetryable: false, message: "42601")))
        #expect(!RetryPolicy.shouldRetry(RunFailureReport(category: .locked, isRetryable: true, message: "")))
        #expect(!RetryPolicy.shouldRetry(RunFailureReport(category: .write, isRetryable: true, message: "ENOSPC")))
    }
}
