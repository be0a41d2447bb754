import Dataset
import Foundation
import MDS
import Media
import Postgres

public struct RunOptions: Sendable {
    /// Rebuild from the start of the source as a new version without parent.
    public var full: Bool
    /// Overrides media.workers of the pipeline file.
    public var workers: Int?
    /// Who hears the run's events (console, ledger, metrics…), in this order.
    public var listeners: [any RunListener]
    /// How often `.progress` events are sent at most.
    public var progressInterval: Double

    public init(full: Bool = false, workers: Int? = nil, listeners: [any RunListener] = [], progressInterval: Double = 5) {
        self.full = full
        self.workers = workers
        self.listeners = listeners
        self.progressInterval = progressInterval
    }
}

public enum RunOutcome: Sendable {
    case published(DatasetManifest)
    /// The source had no row past the newest version's cursor; nothing was written.
    case nothingNew(latest: String?)
}

/// Runs one pipeline end to end — the stages in order, each in its own folder:
/// lock and choose the parent (Dataset) → extract (Extract/SourceReader) → transform in parallel
/// (Transform/RowProcessor on an OrderedParallelMap) → write shards and quarantine (Load/SampleSink) → assemble the
/// version (Dataset/VersionBuilder) → publish it with the store's compare-and-swap commit. Any failure before the
/// commit leaves the published versions, and so the cursor, exactly as they were.
public enum PipelineRunner {
    public static let toolVersion = "0.2.0"

    public static func run(_ config: PipelineConfig, options: RunOptions = RunOptions()) throws -> RunOutcome {
        let emit: (RunEvent) -> Void = { event in for listener in options.listeners { listener.handle(event) } }
        var retry = 0
        while true {
            var progress = RunProgress()
            do {
                return try runStages(config, options: options, emit: emit, progress: &progress)
            } catch {
                let report = RunFailureReport(error)
                retry += 1
                guard RetryPolicy.shouldRetry(report), retry <= config.source.retry.attempts else {
                    emit(.finished(.failed(report, progress)))
                    throw error
                }
                // Nothing was published and the lock is released: the next attempt starts over from the cursor.
                let delay = config.source.retry.delay(beforeRetry: retry, unit: Double.random(in: 0...1))
                emit(.notice(String(format: "retry %d of %d in %.1f s after: %@", retry, config.source.retry.attempts, delay,
                                    report.message.split(separator: "\n").first.map(String.init) ?? report.message)))
                Thread.sleep(forTimeInterval: delay)
            }
        }
    }

    private static func runStages(_ config: PipelineConfig, options: RunOptions, emit: @escaping (RunEvent) -> Void,
                                  progress: inout RunProgress) throws -> RunOutcome {
        let started = Date()
        let attemptId = UUID().uuidString.lowercased()
        let store = try DatasetStores.open(outputRoot: config.outputRoot, dataset: config.dataset, storage: config.storage)
        let lock = TestHooks.skipLock ? nil : try store.lock(runId: attemptId)
        defer { withExtendedLifetime(lock) {} }
        let latest = try store.versions().last
        let parentName = options.full ? nil : latest
        // A run that died after a checkpoint, of this pipeline (same file) on the same parent, is resumed, not redone.
        let resume = lock == nil ? nil : findResumable(store: store, config: config, parent: parentName)
        let runId = resume?.runId ?? attemptId
        // Only with the lock held is every staging directory abandoned (a test that skips the lock keeps them).
        for leftover in lock == nil ? [] : store.removeAbandonedStaging(keeping: resume?.runId) {
            emit(.notice("removed \(leftover) left by an interrupted run"))
        }
        if let repaired = store.repairPointers() { emit(.notice(repaired)) }
        let parent = try parentName.map { name throws(DatasetError) in try store.parent(name) }
        let cursorFrom = parent?.manifest.cursor.to
        emit(.started(RunStart(runId: runId, pipeline: config.name, dataset: config.dataset, parent: parentName,
                               cursorFrom: cursorFrom, startedAt: started)))

        let source = try PreparedSource(config)
        let columns = describeColumns(source.plan, config: config)
        if let parent {
            try checkCompatible(parent: parent.manifest, plan: source.plan, columns: columns, config: config)
        }
        // One REPEATABLE READ READ ONLY transaction from here to the end of the read: one snapshot, no writes.
        let current = try SourceSnapshot.begin(on: source.connection)
        let revisit = try planRevisit(store: store, parent: parent, source: source)
        if let notice = revisit.notice { emit(.notice(notice)) }
        // A resumed run keeps what its first attempt recorded (the older snapshot bounds more transactions) and reads
        // only after the checkpoint's cursor.
        let snapshot = resume?.snapshot ?? current
        let revisitFrom = resume.map { $0.revisitAfter } ?? revisit.after
        let after = resume?.cursor ?? revisit.after
        if let resume {
            emit(.notice("resuming run \(resume.runId) after cursor \(resume.cursor): \(resume.rowsRead) rows and \(resume.sealed.values.reduce(0) { $0 + $1.count }) shards already staged"))
        }
        emit(.planned(estimatedRows: source.estimatedRows(after: after)))
        let template = RunCheckpoint(
            runId: runId, dataset: config.dataset, parent: parentName, configSha256: config.sha256, revisitAfter: revisitFrom,
            snapshot: snapshot, cursor: "", rowsRead: 0, samplesWritten: 0, quarantined: 0, sourceBytes: 0, alreadyPublished: 0,
            sealed: [:], quarantineBytes: 0, quarantineByReason: [:], rowsFileBytes: 0, rowsFileCount: 0)

        let staged = try store.stageVersion(runId: runId)
        do {
            // Replace by key and dedupe by value look up the parent lineage's key index (see LineageKeys).
            let lineage = config.source.changeColumn == nil && config.dedupe == nil ? nil : try LineageKeys(
                config: config, parent: parent, store: store, staged: staged,
                resumedSealed: resume?.sealed ?? [:], notice: { emit(.notice($0)) })
            if let dedupe = config.dedupe, !source.plan.mdsColumns.contains(where: { $0.name == dedupe.column }) {
                var issues = ConfigIssues()
                issues.add("dedupe.column '\(dedupe.column)' is not an output column (they are: \(source.plan.mdsColumns.map(\.name).joined(separator: ", ")))", at: dedupe.location)
                throw PipelineConfigError(issues: issues.all)
            }
            let (sealed, quarantine, rowsProgress, lastCursor) = try extractTransformLoad(
                source: source, reads: try RevisitReads.plan(source: source, after: after, top: cursorFrom, window: revisit.window),
                window: revisit.window, config: config, options: options,
                staged: staged, checkpoint: template, resume: resume, lineage: lineage, emit: emit, started: started)
            progress = rowsProgress
            // Rows found in the re-read window lie below the parent's cursor: the cursor never moves back.
            var cursorTo = lastCursor?.textForParameter ?? resume?.cursor
            let lastPoint = try lastCursor.flatMap(CursorPoint.init)
                ?? resume.flatMap { try SourceSnapshot.point($0.cursor, type: source.plan.cursorType, on: source.connection) }
            if let last = lastPoint, let top = revisit.top, last <= top { cursorTo = cursorFrom }
            try SourceSnapshot.finish(on: source.connection)
            guard progress.rowsRead > 0 else {
                staged.discard()
                emit(.finished(.nothingNew(latest: parentName, progress)))
                return .nothingNew(latest: parentName)
            }
            let version = VersionName.next(after: try store.versions())
            let run = VersionBuilder.RunRecord(
                dataset: config.dataset, version: version, runId: runId,
                createdAt: ISO8601DateFormatter.withFractionalSeconds.string(from: started), toolVersion: toolVersion,
                pipeline: .init(name: config.name, path: config.path, configSha256: config.sha256),
                cursor: .init(column: config.source.cursorColumn, type: source.plan.cursorType, from: cursorFrom, to: cursorTo ?? cursorFrom),
                columns: columns, rowsRead: progress.rowsRead, quarantine: quarantine,
                durationSeconds: Date().timeIntervalSince(started), sourceBytes: progress.sourceBytes)
            var builder = VersionBuilder(parent: parent, splitNames: config.split.names)
            let replaced = try lineage?.finish(sealed: sealed)
            builder.rewritten = replaced?.rewritten ?? [:]
            var built: VersionBuilder.Version
            do { built = try builder.build(run: run, sealed: sealed) } catch {
                throw DatasetError(.corrupt, path: store.location, error.description)
            }
            built.manifest.source = snapshot
            built.manifest.rowsFile = PublishedRowsFile.fileName
            if revisitFrom != cursorFrom { built.manifest.cursor.revisitFrom = revisitFrom }
            if let lineage, let replaced {
                built.manifest.keyIndex = KeyIndex.fileName
                if lineage.replace { built.manifest.counts.replaced = replaced.removed }
                if lineage.dedupeColumn != nil { built.manifest.counts.deduplicated = progress.deduplicated }
                if replaced.removed > 0 {
                    emit(.notice("replaced \(replaced.removed) samples of earlier versions with their changed rows (\(replaced.rewritten.values.reduce(0) { $0 + $1.count }) shards rewritten)"))
                }
                if progress.deduplicated > 0 { emit(.notice("skipped \(progress.deduplicated) rows whose \(config.dedupe!.column) was already published (dedupe)")) }
            }
            try store.assemble(built, into: staged)
            try QualityGates.check(config, built: built, progress: progress, staged: staged)
            TestHooks.pause(at: .beforeCommit)
            try staged.commit(as: version, expectedLatest: latest)
            progress.elapsedSeconds = Date().timeIntervalSince(started)
            emit(.finished(.published(built.manifest, progress)))
            return .published(built.manifest)
        } catch {
            // A stop by signal or a transient source fault keeps the staging with its checkpoint: the next attempt
            // (a retry, or the next scheduled run) resumes there. Anything else is discarded.
            let report = RunFailureReport(error)
            let resumable = report.category == .interrupted || RetryPolicy.shouldRetry(report)
            if !(resumable && RunCheckpoint.read(directory: staged.workDirectory) != nil) { staged.discard() }
            throw error
        }
    }

    /// Streams the new rows through the parallel transform into the sink; returns the sealed shards, the quarantine
    /// summary, the counts, and the cursor of the last row read.
    /// `reads`: the statements to stream (a single run's from RevisitReads.plan, with its keys-only look at the re-read
    /// window; a partition's one range-and-hash statement); `window` still checks every row read against rows.bin.
    static func extractTransformLoad(
        source: PreparedSource, reads: RevisitReads, window: PublishedWindow?, config: PipelineConfig, options: RunOptions,
        staged: any StagedVersion, checkpoint: RunCheckpoint, resume: RunCheckpoint?, lineage: LineageKeys?,
        emit: @escaping (RunEvent) -> Void,
        started: Date
    ) throws -> ([String: [MDSShardEntry]], DatasetManifest.QuarantineSummary, RunProgress, PostgresValue?) {
        let context = TransformContext(
            mediaRoot: try config.media.mediaRoot.map { root throws(MediaError) in try MediaRoot(root) },
            limits: MediaLimits(
                maxInputBytes: config.media.maxInputBytes, maxPixels: config.media.maxPixels, maxDimension: config.media.maxDimension,
                maxDurationSeconds: config.media.maxDurationSeconds, decodeTimeBudgetSeconds: config.media.decodeTimeoutSeconds))
        let processor = RowProcessor(plan: source.plan, splits: SplitAssigner(config.split), context: context)
        // Plain columns go from the COPY rows straight into encoded samples (dedupe by value needs the value itself).
        let encoder = lineage?.dedupeColumn != nil || !TestHooks.directEncoding ? nil : DirectSampleEncoder(processor: processor)
        let transform = BatchTransform(processor: processor, encoder: encoder, window: window)
        let workers = options.workers ?? config.media.workers
        let map = OrderedParallelMap<SourceBatch, SampleBatch>(workers: workers, window: workers * 2 + 2) { transform($0) }
        var writerOptions = MDSWriterOptions(sizeLimit: config.shards.sizeLimit, zstdLevel: config.shards.zstdLevel, hashes: config.shards.hashes)
        writerOptions.naming = .contentAddressed
        if !writerOptions.hashes.contains(.sha256) { writerOptions.hashes.append(.sha256) }
        let sink = try SampleSink(staged: staged, columns: source.plan.mdsColumns, writerOptions: writerOptions, checkpoint: checkpoint,
                                  checkpointEvery: config.shards.checkpointEvery, resuming: resume, listener: emit)
        sink.lineage = lineage
        sink.splitNames = processor.splits.names

        // Rows of the re-read window that versions hold were dropped before their payload was fetched (RevisitReads).
        sink.skipPublished(reads.alreadyPublished)
        // libpq blocks, so the source is read on a thread of its own while this thread writes shards.
        let reader = SourceReader(connection: source.connection, statements: reads.statements, map: map, copyRows: transform.wantsCopyRows)
        reader.start()
        var lastReport = Date()
        var bytesFetched = 0
        do {
            while let batch = map.next() {
                if Interruption.requested { throw RunInterrupted(signal: Interruption.signal) }
                bytesFetched += batch.fetchedBytes
                switch batch {
                case .processed(let rows, _):
                    for row in rows { try sink.consume(row) }
                case .encoded(let samples):
                    try sink.consume(samples)
                }
                let now = Date()
                if now.timeIntervalSince(lastReport) >= options.progressInterval {
                    lastReport = now
                    var progress = sink.progress
                    progress.elapsedSeconds = now.timeIntervalSince(started)
                    emit(.progress(progress))
                }
            }
        } catch {
            map.cancel()
            reader.wait()
            map.join()
            throw error
        }
        reader.wait()
        map.join()
        if let failure = reader.failure { throw failure }
        let (sealed, quarantine) = try sink.finish()
        TestHooks.pause(at: .afterSeal)
        var progress = sink.progress
        progress.rowsFetched = reader.rowsFetched
        progress.bytesFetched = bytesFetched + reads.keyBytes
        progress.elapsedSeconds = Date().timeIntervalSince(started)
        emit(.progress(progress))  // the final counts, so a progress display ends at what was read
        return (sealed, quarantine, progress, sink.lastCursor)
    }

    /// The checkpoint of a dead run of this pipeline file on this parent, if one is in the store's staging.
    private static func findResumable(store: any DatasetStore, config: PipelineConfig, parent: String?) -> RunCheckpoint? {
        guard let local = store as? LocalDatasetStore else { return nil }
        for (runId, path) in local.stagingDirectories() {
            guard let checkpoint = RunCheckpoint.read(directory: path), checkpoint.format == RunCheckpoint.currentFormat,
                  checkpoint.runId == runId, checkpoint.dataset == config.dataset, checkpoint.parent == parent,
                  checkpoint.configSha256 == config.sha256, !checkpoint.cursor.isEmpty else { continue }
            return checkpoint
        }
        return nil
    }

    struct Revisit {
        /// Rows with cursor > after are read.
        var after: String?
        /// The parent's cursor.to as a point (nil without parent).
        var top: CursorPoint?
        var window: PublishedWindow?
        /// The versions whose rows.bin `window` was loaded from (a partitioned run's plan records them).
        var publishedIn: [String] = []
        var notice: String?
    }

    /// Where this run starts reading (see RevisitPlan) and the already-published rows of the re-read window.
    static func planRevisit(store: any DatasetStore, parent: VersionBuilder.Parent?, source: PreparedSource) throws -> Revisit {
        guard let parent, let to = parent.manifest.cursor.to else { return Revisit(after: parent?.manifest.cursor.to) }
        var history = [parent.manifest]
        for name in try store.versions().reversed() where VersionName.number(name)! < VersionName.number(parent.manifest.version)! {
            history.append(try store.manifest(of: name))
        }
        let plan = RevisitPlan.plan(history: history)
        let type = source.plan.cursorType
        let top = try SourceSnapshot.point(to, type: type, on: source.connection)
        guard let top, plan.after != to, !plan.publishedIn.isEmpty else {
            return Revisit(after: plan.after == nil && plan.publishedIn.isEmpty ? to : plan.after, top: top, notice: plan.notice)
        }
        let after = try plan.after.flatMap { try SourceSnapshot.point($0, type: type, on: source.connection) }
        let rowsFiles = plan.publishedIn.compactMap { version in
            history.first { $0.version == version }?.rowsFile.map { (version: version, path: $0) }
        }
        // Through the store: rows.bin can be large, so it is read from a local file (an object store downloads it).
        let window = try store.withLocalFiles(rowsFiles) { files in
            try PublishedWindow(files: files, after: after, top: top, cursorIndex: source.plan.cursorIndex, keyIndex: source.plan.keyIndex)
        }
        return Revisit(after: plan.after, top: top, window: window, publishedIn: plan.publishedIn, notice: plan.notice)
    }

    static func describeColumns(_ plan: SamplePlan, config: PipelineConfig) -> [DatasetManifest.ColumnInfo] {
        var info = [DatasetManifest.ColumnInfo(name: SamplePlan.keyColumnName, encoding: "str", source: config.source.keyColumn, transform: "key")]
        for output in plan.outputs {
            let transform = type(of: output.config.transform).key
            for column in output.columns {
                info.append(.init(name: column.name, encoding: column.encoding.name, source: output.config.from, transform: transform))
            }
        }
        return info.sorted { $0.name < $1.name }
    }

    /// A new version lists its parent's shards, so both must agree on columns and cursor; otherwise the user
    /// changed the pipeline in a way that needs a rebuild, and we say so rather than mix schemas.
    static func checkCompatible(parent: DatasetManifest, plan: SamplePlan, columns: [DatasetManifest.ColumnInfo],
                                        config: PipelineConfig) throws(PipelineConfigError) {
        var issues = ConfigIssues()
        if parent.cursor.column != config.source.cursorColumn || parent.cursor.type != plan.cursorType {
            issues.add("the cursor is now '\(config.source.cursorColumn)' (\(plan.cursorType)) but \(parent.version) was built with '\(parent.cursor.column)' (\(parent.cursor.type)); run with --full to rebuild", at: config.source.cursorLocation)
        }
        let old = Set(parent.columns.map { "\($0.name):\($0.encoding)" })
        let new = Set(columns.map { "\($0.name):\($0.encoding)" })
        if old != new {
            let added = new.subtracting(old).sorted().joined(separator: ", ")
            let removed = old.subtracting(new).sorted().joined(separator: ", ")
            issues.add("the output columns differ from \(parent.version)'s (added: [\(added)], removed: [\(removed)]); a version cannot mix schemas, run with --full to rebuild", at: SourceLocation(file: config.path, line: 1, column: 1))
        }
        if !issues.isEmpty { throw PipelineConfigError(issues: issues.all) }
    }
}

extension ISO8601DateFormatter {
    nonisolated(unsafe) static let withFractionalSeconds: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}

