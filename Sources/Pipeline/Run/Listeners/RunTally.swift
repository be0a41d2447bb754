import Dataset
import Foundation

/// Everything a run's events say, folded into one value: what the ledger records and the metrics file exposes.
/// Pure (the clock is passed in), so what a failed, interrupted or published run reports is unit-tested.
public struct RunTally: Sendable {
    /// When the listener was created: the start of a run that failed before it could say `.started`.
    public var createdAt: Date
    public var start: RunStart?
    public var estimatedRows: Int?
    /// The last counts seen. A run that fails mid-way reports counts of zero in its `.failed` result (they live in
    /// the sink it abandons), so the last `.progress` event is what it had done.
    public var progress = RunProgress()
    public var quarantinedByReason: [String: Int] = [:]
    public var result: RunResult?
    /// Event times, for seconds per stage.
    public var plannedAt: Date?
    public var loadedAt: Date?
    public var finishedAt: Date?

    public init(createdAt: Date) { self.createdAt = createdAt }

    public mutating func record(_ event: RunEvent, at now: Date) {
        switch event {
        case .started(let start): self.start = start
        case .planned(let estimate):
            estimatedRows = estimate
            plannedAt = now
        case .progress(let counts):
            progress = counts
            loadedAt = now
        case .quarantined(let entry): quarantinedByReason[entry.reason, default: 0] += 1
        case .shardSealed, .notice: break
        case .finished(let result):
            self.result = result
            finishedAt = now
            switch result {
            case .published(_, let counts), .nothingNew(_, let counts):
                progress = counts
            case .failed(_, let counts):
                if counts.rowsRead > progress.rowsRead { progress = counts }
            }
        }
    }

    public var startedAt: Date { start?.startedAt ?? createdAt }

    public var outcome: RunRecord.Outcome? {
        switch result {
        case .published?: .published
        case .nothingNew?: .nothingNew
        case .failed?: .failed
        case nil: nil
        }
    }

    public var failure: RunFailureReport? {
        if case .failed(let report, _)? = result { return report }
        return nil
    }

    public var manifest: DatasetManifest? {
        if case .published(let manifest, _)? = result { return manifest }
        return nil
    }

    /// Seconds per stage: `prepare` (lock, parent, connect, plan), `extract_transform_load` (rows through to sealed
    /// shards), `publish` (gates, indexes, manifest, commit). A stage the run never reached is absent.
    public var stageSeconds: [String: Double] {
        var stages: [String: Double] = [:]
        guard let finishedAt else { return stages }
        let planned = plannedAt ?? finishedAt
        stages["prepare"] = max(0, planned.timeIntervalSince(startedAt))
        if let plannedAt {
            let loaded = loadedAt ?? finishedAt
            stages["extract_transform_load"] = max(0, loaded.timeIntervalSince(plannedAt))
            if loadedAt != nil, outcome == .published { stages["publish"] = max(0, finishedAt.timeIntervalSince(loaded)) }
        }
        return stages
    }
}

/// Folds events into a `RunTally` from any thread and hands the tally over once, when the run finishes: what every
/// listener that reports a whole run (file ledger, PostgreSQL ledger, metrics file) needs before it writes anything.
public final class RunTallyRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var tally = RunTally(createdAt: Date())

    public init() {}

    /// Records `event`; returns the finished run's tally when `event` is `.finished`, nil otherwise.
    public func record(_ event: RunEvent) -> RunTally? {
        lock.withLock {
            tally.record(event, at: Date())
            if case .finished = event { return tally }
            return nil
        }
    }
}
