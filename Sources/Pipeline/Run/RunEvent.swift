import Dataset
import Foundation

/// What a run reports while it goes, in order. Listeners turn these into console lines today; a run ledger, metrics,
/// JSON logs and a progress bar are further listeners, and none of them needs to know how a run works.
public enum RunEvent: Sendable {
    /// The lock is held and the parent chosen; nothing has been read yet.
    case started(RunStart)
    /// The source query is planned; `estimatedRows` is PostgreSQL's estimate for the incremental query, if it gave one.
    case planned(estimatedRows: Int?)
    /// Counts so far, at most a few times a second (never per row: millions of small rows must not pay for it).
    case progress(RunProgress)
    /// A source row that did not become a sample, with its reason.
    case quarantined(QuarantineEntry)
    /// A shard is complete on disk and part of the staged version.
    case shardSealed(split: String, basename: String, samples: Int, bytes: Int)
    /// Something an operator may want to know that is not a failure (staging debris removed, LATEST repaired).
    case notice(String)
    /// The run ended: a published version, nothing new, or a failure.
    case finished(RunResult)
}

public struct RunStart: Sendable, Equatable {
    public var runId: String
    public var pipeline: String
    public var dataset: String
    /// The version this run builds on; nil for a first or `--full` run.
    public var parent: String?
    public var cursorFrom: String?
    public var startedAt: Date
}

public struct RunProgress: Sendable, Equatable {
    public var rowsRead = 0
    public var samplesWritten = 0
    public var quarantined = 0
    public var sourceBytes = 0
    public var shardsSealed = 0
    /// Rows of the re-read window below the previous cursor that a version already holds (skipped, not counted as read).
    public var alreadyPublished = 0
    /// Rows (and their approximate decoded bytes) this attempt fetched from the source. Unlike `rowsRead`, which a run
    /// resumed from a checkpoint carries over, these count only what was fetched again: the rows after the checkpoint.
    public var rowsFetched = 0
    public var bytesFetched = 0
    /// Rows not written because their `dedupe:` value was already published (counted as read).
    public var deduplicated = 0
    public var elapsedSeconds = 0.0
    public init() {}
}

/// How a run ended. A failure is also thrown to the caller; the event lets listeners record it.
public enum RunResult: Sendable {
    case published(DatasetManifest, RunProgress)
    case nothingNew(latest: String?, RunProgress)
    case failed(RunFailureReport, RunProgress)
}

/// A failure as listeners see it: its category (which decides the exit code), whether retrying may help, and the
/// message a user acts on.
public struct RunFailureReport: Sendable, Equatable {
    public var category: FailureCategory
    public var isRetryable: Bool
    public var message: String
}

/// Receives a run's events on the thread that runs it; keep `handle` quick.
public protocol RunListener: Sendable {
    func handle(_ event: RunEvent)
}

/// A listener from a closure, e.g. for tests.
public struct RunEventClosure: RunListener {
    let body: @Sendable (RunEvent) -> Void
    public init(_ body: @escaping @Sendable (RunEvent) -> Void) { self.body = body }
    public func handle(_ event: RunEvent) { body(event) }
}
