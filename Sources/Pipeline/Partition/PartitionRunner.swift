import Dataset
import Foundation
import MDS
import Postgres
import SystemIO

/// `etl run <pipeline> --run <id> --partition i/N`: reads one partition of a planned run — the plan's cursor range,
/// only the rows whose key hashes to `i` (PartitionHash) — through the same transform and sink as a single run, into an
/// attempt directory of the run area, and then writes the partition's completion record. A partition that dies leaves
/// no record (or the previous attempt's); its rerun starts a fresh attempt and replaces the record, never adds to it.
public enum PartitionRunner {
    public enum Outcome: Sendable {
        case completed(PartitionCompletion)
        /// The run's commit already published this version: nothing to do.
        case alreadyPublished(runId: String, version: String)
    }

    public static func run(_ config: PipelineConfig, runId: String, partition text: String?, environment: [String: String],
                           options: RunOptions = RunOptions()) throws -> Outcome {
        let emit: (RunEvent) -> Void = { event in for listener in options.listeners { listener.handle(event) } }
        let started = Date()
        if let problem = RunIdentifier.problem(runId) { throw PartitionError.invalidPartition(problem) }
        if let problem = RunPlanCheck.keyIndexProblem(config) { throw problem }
        let store = try PartitionPlanner.runArea(config)
        let plan = try store.plan(ofRun: runId)
        let spec: PartitionSpec
        do { spec = try PartitionSpec.resolve(text, environment: environment, plannedCount: plan.partitions) } catch {
            throw PartitionError.invalidPartition(error.description)
        }
        if let problem = RunPlanCheck.configProblem(plan: plan, configSha256: config.sha256) { throw problem }
        let lock = try store.lockPartition(spec.index, runId: runId)
        defer { withExtendedLifetime(lock) {} }
        if let version = try PartitionCommitter.publishedVersion(of: plan, in: store) {
            return .alreadyPublished(runId: runId, version: version)
        }
        let attempt = "attempt-\(UUID().uuidString.prefix(8).lowercased())"
        emit(.started(RunStart(runId: runId, pipeline: config.name, dataset: config.dataset, parent: plan.parent,
                               cursorFrom: plan.readAfter, startedAt: started)))

        var record = PartitionCompletion(
            runId: runId, partition: spec.index, partitions: spec.count, configSha256: config.sha256, attempt: attempt, sealed: [:],
            rowsRead: 0, samplesWritten: 0, quarantined: 0, alreadyPublished: 0, sourceBytes: 0,
            quarantine: .init(count: 0, byReason: [:], file: nil), rowsFile: nil, finishedAt: "")
        guard let through = plan.readThrough else {
            // The plan saw no row to read: the partition is done, with nothing.
            record.finishedAt = ISO8601DateFormatter.withFractionalSeconds.string(from: Date())
            try store.completePartition(record)
            return .completed(record)
        }
        let parent = try plan.parent.map { name throws(DatasetError) in try store.parent(name) }
        let source = try PreparedSource(config)
        if let parent {
            try PipelineRunner.checkCompatible(parent: parent.manifest, plan: source.plan,
                                               columns: PipelineRunner.describeColumns(source.plan, config: config), config: config)
        }
        // A snapshot of its own, later than the plan's: a superset of what the plan saw within the range.
        _ = try SourceSnapshot.begin(on: source.connection)
        // The re-read window as a single run finds it (the same rule over the same versions), so it must be the plan's:
        // if it is not, versions before the parent changed since the plan (gc, forget) and the plan is stale.
        let revisit = try PipelineRunner.planRevisit(store: store, parent: parent, source: source)
        guard revisit.after == plan.readAfter, revisit.publishedIn == plan.publishedIn else {
            throw PartitionError.historyChanged(runId: runId)
        }
        let window = revisit.window
        emit(.planned(estimatedRows: nil))
        let template = RunCheckpoint(
            runId: runId, dataset: config.dataset, parent: plan.parent, configSha256: config.sha256, revisitAfter: plan.readAfter,
            snapshot: plan.source, cursor: "", rowsRead: 0, samplesWritten: 0, quarantined: 0, sourceBytes: 0, alreadyPublished: 0,
            sealed: [:], quarantineBytes: 0, quarantineByReason: [:], rowsFileBytes: 0, rowsFileCount: 0)
        let staged = try store.stagePartition(spec.index, runId: runId, attempt: attempt)
        do {
            // As a single run reads: the partition's share of the re-read window looked at keys only, then the rows of
            // keys no version holds, then its rows above the window (the range's end and the hash in every statement).
            let reads = try RevisitReads.plan(source: source, after: plan.readAfter, top: plan.cursor.from, window: window,
                                              partition: .init(index: spec.index, count: spec.count, through: through))
            let (sealed, quarantine, progress, _) = try PipelineRunner.extractTransformLoad(
                source: source, reads: reads, window: window, config: config, options: options, staged: staged, checkpoint: template, resume: nil, lineage: nil, emit: emit, started: started)
            try SourceSnapshot.finish(on: source.connection)
            // Checkpoints resume a single run; a partition is redone whole, so its checkpoint is not part of its output.
            FileSystem.removeIfPresent("\(staged.workDirectory)/\(RunCheckpoint.fileName)")
            record.sealed = sealed
            record.rowsRead = progress.rowsRead
            record.samplesWritten = progress.samplesWritten
            record.quarantined = progress.quarantined
            record.alreadyPublished = progress.alreadyPublished
            record.sourceBytes = progress.sourceBytes
            record.rowsFetched = progress.rowsFetched
            record.bytesFetched = progress.bytesFetched
            record.quarantine = quarantine
            record.rowsFile = PublishedRowsFile.fileName
            record.finishedAt = ISO8601DateFormatter.withFractionalSeconds.string(from: Date())
            try store.completePartition(record)
            return .completed(record)
        } catch {
            staged.discard()
            throw error
        }
    }
}
