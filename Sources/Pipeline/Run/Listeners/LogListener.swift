import Dataset
import Foundation
import Logging

/// The run's events as structured log records through swift-log (`--log-format json` hands it a `JSONLogHandler`):
/// one record per event, named `run.<event>`, with `run_id` on every record once the run has one. Quarantined rows
/// are `debug` (a bad night can quarantine millions; the `run.finished` record carries the counts by reason).
public final class LogListener: RunListener, @unchecked Sendable {
    private let lock = NSLock()
    private var logger: Logger
    private var quarantinedByReason: [String: Int] = [:]

    public init(logger: Logger, pipeline: String, dataset: String) {
        var logger = logger
        logger[metadataKey: "pipeline"] = .string(pipeline)
        logger[metadataKey: "dataset"] = .string(dataset)
        self.logger = logger
    }

    public func handle(_ event: RunEvent) {
        lock.withLock {
            switch event {
            case .started(let start):
                logger[metadataKey: "run_id"] = .string(start.runId)
                logger.info("run.started", metadata: [
                    "parent": start.parent.map { .string($0) } ?? .string(""),
                    "cursor_from": start.cursorFrom.map { .string($0) } ?? .string(""),
                ])
            case .planned(let estimate):
                logger.info("run.planned", metadata: estimate.map { ["estimated_rows": .stringConvertible($0)] } ?? [:])
            case .progress(let progress):
                logger.info("run.progress", metadata: Self.counts(progress))
            case .quarantined(let entry):
                quarantinedByReason[entry.reason, default: 0] += 1
                logger.debug("run.quarantined", metadata: [
                    "key": .string(entry.key ?? ""), "reason": .string(entry.reason), "message": .string(entry.message),
                ])
            case .shardSealed(let split, let basename, let samples, let bytes):
                logger.info("run.shard_sealed", metadata: [
                    "split": .string(split), "shard": .string(basename), "samples": .stringConvertible(samples),
                    "bytes": .stringConvertible(bytes),
                ])
            case .notice(let text):
                logger.notice("run.notice", metadata: ["message": .string(text)])
            case .finished(let result):
                var fields: Logger.Metadata = ["quarantined_by_reason": .dictionary(quarantinedByReason.mapValues { .stringConvertible($0) })]
                switch result {
                case .published(let manifest, let progress):
                    fields.merge(Self.counts(progress)) { $1 }
                    fields["outcome"] = .string("published")
                    fields["version"] = .string(manifest.version)
                    fields["cursor_to"] = .string(manifest.cursor.to ?? "")
                    fields["bytes_written"] = .stringConvertible(manifest.stats.bytesWritten)
                    logger.info("run.finished", metadata: fields)
                case .nothingNew(let latest, let progress):
                    fields.merge(Self.counts(progress)) { $1 }
                    fields["outcome"] = .string("nothing_new")
                    fields["latest"] = .string(latest ?? "")
                    logger.info("run.finished", metadata: fields)
                case .failed(let report, let progress):
                    fields.merge(Self.counts(progress)) { $1 }
                    fields["outcome"] = .string("failed")
                    fields["failure"] = .string(LedgerListener.failureName(report.category))
                    fields["retryable"] = .stringConvertible(report.isRetryable)
                    fields["message"] = .string(report.message)
                    logger.error("run.finished", metadata: fields)
                }
            }
        }
    }

    /// A line that is not a run event (a config error before the run, a ledger warning), in the same format.
    public func log(_ level: Logger.Level, _ event: String, _ metadata: Logger.Metadata = [:]) {
        lock.withLock { logger.log(level: level, "\(event)", metadata: metadata) }
    }

    static func counts(_ progress: RunProgress) -> Logger.Metadata {
        var counts: Logger.Metadata = [
            "rows_read": .stringConvertible(progress.rowsRead), "samples_written": .stringConvertible(progress.samplesWritten),
            "quarantined": .stringConvertible(progress.quarantined), "source_bytes": .stringConvertible(progress.sourceBytes),
            "elapsed_seconds": .stringConvertible((progress.elapsedSeconds * 1000).rounded() / 1000),
        ]
        // Only pipelines with `dedupe:` skip rows by value; others keep their lines as they were.
        if progress.deduplicated > 0 { counts["deduplicated"] = .stringConvertible(progress.deduplicated) }
        return counts
    }
}
