import Foundation
import Media
import Postgres
import Dataset
import MDS

public struct RunOptions: Sendable {
    /// Rebuild from the start of the source as a new version without parent.
    public var full: Bool
    /// Overrides media.workers of the pipeline file.
    public var workers: Int?
    /// Progress and notices, one line each.
    public var log: @Sendable (String) -> Void

    public init(full: Bool = false, workers: Int? = nil, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.full = full
        self.workers = workers
        self.log = log
    }
}

public enum RunOutcome: Sendable {
    case published(DatasetManifest)
    /// The source had no row past the newest version's cursor; nothing was written.
    case nothingNew(latest: String?)
}

/// Runs one pipeline end to end: lock, read the newest manifest's cursor, stream new rows, transform them in
/// parallel, write shards into a staging directory, and publish it as one new version. Any failure before the final
/// rename leaves the published versions (and so the cursor) exactly as they were.
public enum PipelineRunner {
    public static let toolVersion = "0.1.0"

    public static func run(_ config: PipelineConfig, options: RunOptions = RunOptions()) throws -> RunOutcome {
        let started = Date()
        let runId = UUID().uuidString.lowercased()
        let store = DatasetStore(outputRoot: config.outputRoot, dataset: config.dataset)
        let lock = try store.lock(runId: runId)
        defer { withExtendedLifetime(lock) {} }
        for leftover in store.removeStaleStaging() {
            options.log("removed \(leftover) left by an interrupted run")
        }

        let parentName = options.full ? nil : store.latestVersion
        let parent = try parentName.map { name throws(DatasetStoreError) in try store.manifest(of: name) }

        let source = try PreparedSource(config)
        let (connection, plan) = (source.connection, source.plan)
        let columnInfo = describeColumns(plan, config: config)
        if let parent {
            try checkCompatible(parent: parent, plan: plan, columns: columnInfo, config: config)
        }
        let cursorFrom = parent?.cursor.to
        let sql = source.sql(after: cursorFrom)
        let version = store.nextVersionName()

        let staging = try store.makeStaging(runId: runId)
        do {
            let written = try extractAndWrite(
                sql: sql, parameters: cursorFrom.map { [$0] } ?? [], connection: connection, plan: plan, config: config,
                options: options, staging: staging, store: store, parent: parent, version: version)
            guard written.rowsRead > 0 else {
                store.discardStaging(staging)
                return .nothingNew(latest: parentName)
            }
            let manifest = DatasetManifest(
                dataset: config.dataset, version: version, parent: parent?.version, runId: runId,
                createdAt: ISO8601DateFormatter.withFractionalSeconds.string(from: started), toolVersion: toolVersion,
                pipeline: .init(name: config.name, path: config.path, configSha256: config.sha256),
                cursor: .init(column: config.source.cursorColumn, type: plan.cursorType, from: cursorFrom, to: written.cursorTo ?? cursorFrom),
                counts: .init(samples: written.splits.values.reduce(0) { $0 + $1.samples }, newSamples: written.newSamples,
                              rowsRead: written.rowsRead, quarantined: written.quarantine.count),
                splits: written.splits, columns: columnInfo,
                quarantine: .init(count: written.quarantine.count, byReason: written.quarantine.byReason,
                                  file: written.quarantine.count > 0 ? QuarantineFile.fileName : nil),
                stats: .init(durationSeconds: Date().timeIntervalSince(started), bytesWritten: written.bytesWritten, sourceBytes: written.sourceBytes))
            try writeAtomically(try manifest.encoded(), to: staging.appendingPathComponent(DatasetManifest.fileName))
            try store.publish(staging: staging, as: version)
            return .published(manifest)
        } catch {
            store.discardStaging(staging)
            throw error
        }
    }

    struct Written {
        var rowsRead = 0
        var newSamples = 0
        var sourceBytes = 0
        var bytesWritten = 0
        var cursorTo: String?
        var splits: [String: DatasetManifest.SplitInfo] = [:]
        var quarantine: (count: Int, byReason: [String: Int]) = (0, [:])
    }

    private static func extractAndWrite(
        sql: String, parameters: [String?], connection: PostgresConnection, plan: SamplePlan, config: PipelineConfig,
        options: RunOptions, staging: URL, store: DatasetStore, parent: DatasetManifest?, version: String
    ) throws -> Written {
        let parentIndexes = try parent.map { try readIndexes(of: $0, store: store) } ?? [:]
        let quarantine = try QuarantineFile(directory: staging)
        let context = TransformContext(
            mediaRoot: try config.media.mediaRoot.map { root throws(MediaError) in try MediaRoot(root) },
            limits: MediaLimits(
                maxInputBytes: config.media.maxInputBytes, maxPixels: config.media.maxPixels, maxDimension: config.media.maxDimension,
                maxDurationSeconds: config.media.maxDurationSeconds, decodeTimeBudgetSeconds: config.media.decodeTimeoutSeconds))
        let processor = RowProcessor(plan: plan, splits: SplitAssigner(config.split), context: context)
        let workers = options.workers ?? config.media.workers
        let map = OrderedParallelMap<PostgresRow, ProcessedRow>(workers: workers, window: workers * 2 + 2) { processor.process($0) }

        // libpq blocks, so the source is read on a thread of its own while this thread writes shards.
        let extract = SourceReader(connection: connection, sql: sql, parameters: parameters, map: map)
        extract.start()

        var written = Written()
        var writers: [String: MDSWriter] = [:]
        var lastCursor: PostgresValue?
        var lastSampleKey: MDSValue?
        let progress = ProgressReporter(log: options.log)
        do {
            while let item = map.next() {
                written.rowsRead += 1
                switch item {
                case .sample(let split, let values, let cursor, let bytes):
                    // Rows come ordered by (cursor, key), so a key repeated by a fanning-out join is adjacent to
                    // its first occurrence: the first is kept, the repeats are quarantined, in O(1) memory.
                    let key = values[SamplePlan.keyColumnName]
                    if let key, key == lastSampleKey, cursor == lastCursor {
                        try quarantine.append(QuarantineEntry(
                            key: key.keyText, reason: .duplicateKey,
                            message: "the query returned key \(key.keyText ?? "?") more than once (a join that fans out?); the first row was kept",
                            column: nil))
                        written.sourceBytes += bytes
                        break
                    }
                    lastSampleKey = key
                    let writer = try writers[split] ?? {
                        let directory = staging.appendingPathComponent(split, isDirectory: true)
                        try store.createDirectory(directory)
                        let created = try MDSWriter(
                            directory: directory, columns: plan.mdsColumns,
                            options: MDSWriterOptions(sizeLimit: config.shards.sizeLimit, zstdLevel: config.shards.zstdLevel, hashes: config.shards.hashes),
                            firstShardIndex: parentIndexes[split]?.shards.count ?? 0)
                        writers[split] = created
                        return created
                    }()
                    written.sourceBytes += bytes
                    lastCursor = cursor
                    if let rejected = try writeSample(values, to: writer) {
                        try quarantine.append(rejected)
                    } else {
                        written.newSamples += 1
                    }
                case .rejected(let entry, let cursor, let bytes):
                    try quarantine.append(entry)
                    written.sourceBytes += bytes
                    lastCursor = cursor
                }
                progress.tick(rows: written.rowsRead, bytes: written.sourceBytes)
            }
        } catch {
            map.cancel()
            extract.wait()
            map.join()
            throw error
        }
        extract.wait()
        map.join()
        if let failure = extract.failure { throw failure }
        try quarantine.close()
        written.quarantine = (quarantine.count, quarantine.byReason)
        if quarantine.count == 0 { try? FileManager.default.removeItem(at: quarantine.url) }
        written.cursorTo = lastCursor?.textForParameter
        guard written.rowsRead > 0 else { return written }

        // Every split of the parent carries over (its shards shared, not copied); new shards are appended.
        let splitNames = Set(config.split.names).union(parentIndexes.keys).union(writers.keys)
        for split in splitNames.sorted() {
            let inherited = parentIndexes[split]?.shards ?? []
            let created = try writers[split]?.finish() ?? []
            guard !inherited.isEmpty || !created.isEmpty else { continue }
            let directory = staging.appendingPathComponent(split, isDirectory: true)
            try store.createDirectory(directory)
            if let parent {
                let parentDirectory = store.versionDirectory(parent.version).appendingPathComponent(split, isDirectory: true)
                for entry in inherited {
                    try store.shareFile(parentDirectory.appendingPathComponent(entry.storedFile.basename),
                                        at: directory.appendingPathComponent(entry.storedFile.basename))
                }
            }
            try MDSIndex(shards: inherited + created, version: 2).write(to: directory)
            let inheritedRecords = parent?.splits[split]?.shards ?? []
            let createdRecords = created.map { shardRecord($0, createdBy: version) }
            written.bytesWritten += createdRecords.reduce(0) { $0 + $1.bytes }
            let newSamples = created.reduce(0) { $0 + $1.samples }
            written.splits[split] = DatasetManifest.SplitInfo(
                samples: (inherited + created).reduce(0) { $0 + $1.samples }, newSamples: newSamples,
                shards: inheritedRecords + createdRecords)
        }
        return written
    }

    /// Writes one sample; a value the encoding cannot hold (e.g. a float32 overflow) leaves the writer unchanged
    /// and comes back as a quarantine entry, like any other bad row. I/O failures end the run.
    private static func writeSample(_ values: SampleValues, to writer: MDSWriter) throws(ShardError) -> QuarantineEntry? {
        let failure: ShardError?
        do {
            try writer.write(values)
            failure = nil
        } catch {
            failure = error
        }
        guard let failure else { return nil }
        guard failure.isSampleError else { throw failure }
        return QuarantineEntry(sampleError: failure, key: values[SamplePlan.keyColumnName])
    }

    private static func readIndexes(of parent: DatasetManifest, store: DatasetStore) throws -> [String: MDSIndex] {
        var indexes: [String: MDSIndex] = [:]
        for split in parent.splits.keys {
            indexes[split] = try MDSIndex.read(from: store.versionDirectory(parent.version).appendingPathComponent(split, isDirectory: true))
        }
        return indexes
    }

    static func shardRecord(_ entry: MDSShardEntry, createdBy version: String) -> DatasetManifest.ShardRecord {
        DatasetManifest.ShardRecord(
            basename: entry.storedFile.basename, samples: entry.samples, bytes: entry.storedFile.bytes, rawBytes: entry.rawData.bytes,
            sha256: entry.storedFile.hashes["sha256"] ?? "", createdBy: version)
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
    private static func checkCompatible(parent: DatasetManifest, plan: SamplePlan, columns: [DatasetManifest.ColumnInfo],
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

/// A progress line every few seconds, so a long nightly run shows it is alive.
private final class ProgressReporter {
    private let log: @Sendable (String) -> Void
    private let started = Date()
    private var lastReport = Date()

    init(log: @escaping @Sendable (String) -> Void) { self.log = log }

    func tick(rows: Int, bytes: Int) {
        guard rows % 64 == 0 else { return }
        let now = Date()
        guard now.timeIntervalSince(lastReport) >= 5 else { return }
        lastReport = now
        let seconds = now.timeIntervalSince(started)
        log(String(format: "%d rows, %.1f MB read, %.1f MB/s", rows, Double(bytes) / 1e6, Double(bytes) / 1e6 / max(seconds, 0.001)))
    }
}

extension ISO8601DateFormatter {
    nonisolated(unsafe) static let withFractionalSeconds: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}

extension QuarantineEntry {
    init(sampleError error: ShardError, key: MDSValue?) {
        self.init(key: key?.keyText, reason: QuarantineReason(sampleError: error.code), message: error.message, column: error.column)
    }
}

extension MDSValue {
    /// The text of a `__key__` value.
    var keyText: String? {
        if case .string(let text) = self { return text }
        return nil
    }
}
