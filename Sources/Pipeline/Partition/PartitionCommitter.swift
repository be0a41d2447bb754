import Dataset
import Foundation
import MDS
import SystemIO

/// `etl commit <pipeline> --run <id>`: publishes one version from every partition of a planned run, once each has its
/// completion record. Under the dataset's lock and every partition's lock (no partition can be replaced meanwhile), it
/// links the partitions' shards into a staging version (content-addressed names never collide), merges their
/// rows.bin and quarantine.jsonl, builds the indexes and manifest with `VersionBuilder`, and publishes with the
/// store's compare-and-swap on the plan's parent. Needs no database: the plan recorded what the manifest says.
public enum PartitionCommitter {
    public enum Outcome: Sendable {
        case published(DatasetManifest)
        case nothingNew(latest: String?)
        /// This run was committed before (a retried commit Job): nothing to do.
        case alreadyPublished(version: String)
    }

    public static func commit(_ config: PipelineConfig, runId: String, options: RunOptions = RunOptions()) throws -> Outcome {
        let emit: (RunEvent) -> Void = { event in for listener in options.listeners { listener.handle(event) } }
        let started = Date()
        if let problem = RunIdentifier.problem(runId) { throw PartitionError.invalidPartition(problem) }
        if let problem = RunPlanCheck.keyIndexProblem(config) { throw problem }
        let store = try PartitionPlanner.runArea(config)
        let lock = TestHooks.skipLock ? nil : try store.lock(runId: runId)
        defer { withExtendedLifetime(lock) {} }
        let plan = try store.plan(ofRun: runId)
        if let problem = RunPlanCheck.configProblem(plan: plan, configSha256: config.sha256) { throw problem }
        if let version = try publishedVersion(of: plan, in: store) { return .alreadyPublished(version: version) }
        emit(.started(RunStart(runId: runId, pipeline: config.name, dataset: config.dataset, parent: plan.parent,
                               cursorFrom: plan.cursor.from, startedAt: started)))
        var progress = RunProgress()
        do {
            return try publish(plan, config: config, store: store, emit: emit, started: started, progress: &progress)
        } catch {
            emit(.finished(.failed(RunFailureReport(error), progress)))
            throw error
        }
    }

    private static func publish(_ plan: RunPlan, config: PipelineConfig, store: any RunArea, emit: (RunEvent) -> Void,
                                started: Date, progress: inout RunProgress) throws -> Outcome {
        let versions = try store.versions()
        if let problem = RunPlanCheck.parentProblem(plan: plan, latest: versions.last) { throw problem }
        // Every partition's lock: a partition still running (or being rerun) cannot have its record replaced mid-commit.
        let partitionLocks = try (0..<plan.partitions).map { index throws(DatasetError) in try store.lockPartition(index, runId: plan.runId) }
        defer { withExtendedLifetime(partitionLocks) {} }
        var records: [Int: PartitionCompletion] = [:]
        for index in 0..<plan.partitions { records[index] = try store.completion(ofPartition: index, runId: plan.runId) }
        let missing = RunPlanCheck.missingPartitions(plan: plan, records: records)
        guard missing.isEmpty else {
            throw PartitionError.incomplete(runId: plan.runId, missing: missing, of: plan.partitions, pipeline: config.name)
        }
        let ordered = (0..<plan.partitions).map { records[$0]! }
        for record in ordered {
            progress.rowsRead += record.rowsRead
            progress.samplesWritten += record.samplesWritten
            progress.quarantined += record.quarantined
            progress.alreadyPublished += record.alreadyPublished
            progress.sourceBytes += record.sourceBytes
            progress.rowsFetched += record.rowsFetched ?? 0
            progress.bytesFetched += record.bytesFetched ?? 0
            progress.shardsSealed += record.sealed.values.reduce(0) { $0 + $1.count }
        }
        guard progress.rowsRead > 0 else {
            store.removePartitionOutput(runId: plan.runId)
            emit(.finished(.nothingNew(latest: plan.parent, progress)))
            return .nothingNew(latest: plan.parent)
        }
        for leftover in TestHooks.skipLock ? [] : store.removeAbandonedStaging(keeping: nil) {
            emit(.notice("removed \(leftover) left by an interrupted run"))
        }
        if let repaired = store.repairPointers() { emit(.notice(repaired)) }
        let parent = try plan.parent.map { name throws(DatasetError) in try store.parent(name) }
        let staged = try store.stageVersion(runId: plan.runId)
        do {
            var sealed: [String: [MDSShardEntry]] = [:]
            for record in ordered {
                for split in record.sealed.keys.sorted() {
                    for entry in record.sealed[split]! {
                        try store.sharePartitionFile("\(split)/\(entry.storedFile.basename)", of: record, into: staged,
                                                     expectedBytes: entry.storedFile.bytes)
                    }
                    sealed[split, default: []] += record.sealed[split]!
                }
            }
            let quarantine = try mergeQuarantine(ordered, store: store, into: staged)
            try mergeRows(ordered, store: store, into: staged)
            let version = VersionName.next(after: versions)
            var cursor = plan.cursor
            cursor.revisitFrom = nil
            let run = VersionBuilder.RunRecord(
                dataset: config.dataset, version: version, runId: plan.runId,
                createdAt: ISO8601DateFormatter.withFractionalSeconds.string(from: started), toolVersion: PipelineRunner.toolVersion,
                pipeline: .init(name: config.name, path: config.path, configSha256: config.sha256), cursor: cursor,
                columns: plan.columns, rowsRead: progress.rowsRead, quarantine: quarantine,
                durationSeconds: Date().timeIntervalSince(started), sourceBytes: progress.sourceBytes)
            var built: VersionBuilder.Version
            do { built = try VersionBuilder(parent: parent, splitNames: config.split.names).build(run: run, sealed: sealed) } catch {
                throw DatasetError(.corrupt, path: store.location, error.description)
            }
            built.manifest.source = plan.source
            built.manifest.rowsFile = PublishedRowsFile.fileName
            built.manifest.cursor.revisitFrom = plan.cursor.revisitFrom
            try store.assemble(built, into: staged)
            try QualityGates.check(config, built: built, progress: progress, staged: staged)
            TestHooks.pause(at: .beforeCommit)
            try staged.commit(as: version, expectedLatest: plan.latest)
            // Published: the version holds the shards now, so the partitions' copies go (the records stay).
            store.removePartitionOutput(runId: plan.runId)
            progress.elapsedSeconds = Date().timeIntervalSince(started)
            emit(.finished(.published(built.manifest, progress)))
            return .published(built.manifest)
        } catch {
            staged.discard()
            throw error
        }
    }

    /// The version this plan's commit published, if any: only versions after the plan's parent can be it.
    static func publishedVersion(of plan: RunPlan, in store: any DatasetStore) throws -> String? {
        let parentNumber = plan.latest.flatMap(VersionName.number) ?? 0
        let later = try store.versions().filter { (VersionName.number($0) ?? 0) > parentNumber }
        return RunPlanCheck.publishedVersion(runId: plan.runId, manifests: try later.map { name throws(DatasetError) in try store.manifest(of: name) })
    }

    /// The partitions' quarantine files, one after the other, as the version's quarantine.jsonl.
    private static func mergeQuarantine(_ records: [PartitionCompletion], store: any RunArea,
                                        into staged: any StagedVersion) throws -> DatasetManifest.QuarantineSummary {
        var bytes: [UInt8] = []
        var byReason: [String: Int] = [:]
        var count = 0
        for record in records where record.quarantine.count > 0 {
            let path = try store.localPartitionFile(record.quarantine.file ?? QuarantineFile.fileName, of: record)
            guard let part = try FileSystem.readAll(path, role: "quarantine of partition \(record.partition)") else {
                throw DatasetError(.corrupt, path: path, "partition \(record.partition) records \(record.quarantine.count) quarantined rows but has no quarantine file; rerun it")
            }
            bytes += part
            count += record.quarantine.count
            byReason.merge(record.quarantine.byReason, uniquingKeysWith: +)
        }
        guard count > 0 else { return .init(count: 0, byReason: [:], file: nil) }
        try staged.write(bytes, to: QuarantineFile.fileName)
        return .init(count: count, byReason: byReason, file: QuarantineFile.fileName)
    }

    /// Every (cursor, key) any partition consumed, in one rows.bin: the next run's re-read skips all of them.
    private static func mergeRows(_ records: [PartitionCompletion], store: any RunArea, into staged: any StagedVersion) throws {
        let writer = try PublishedRowsFile.Writer(path: "\(staged.workDirectory)/\(PublishedRowsFile.fileName)")
        var failure: SystemError?
        for record in records {
            guard let rowsFile = record.rowsFile else { continue }
            try PublishedRowsFile.forEach(try store.localPartitionFile(rowsFile, of: record)) { row in
                guard failure == nil else { return }
                do throws(SystemError) { try writer.append(row) } catch { failure = error }
            }
            if let failure { throw failure }
        }
        try writer.close()
        try staged.stage(PublishedRowsFile.fileName)
    }
}
