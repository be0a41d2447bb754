import MDS

/// Assembles a dataset version's files from its parts: the parent's shards (shared, never copied) and the shards this
/// run sealed, split by split. Pure: no I/O, so every rule about what a version holds is here and tested on its own.
/// `etl run` goes through it today; `forget`, `gc` and a partitioned commit are meant to as well.
public struct VersionBuilder: Sendable {
    /// The published version a new one builds on, with the index.json of each of its splits.
    public struct Parent: Sendable {
        public var manifest: DatasetManifest
        public var indexes: [String: MDSIndex]
        public init(manifest: DatasetManifest, indexes: [String: MDSIndex]) {
            self.manifest = manifest
            self.indexes = indexes
        }
    }

    /// Everything about the run that the manifest records besides the shards.
    public struct RunRecord: Sendable {
        public var dataset: String
        public var version: String
        public var runId: String
        public var createdAt: String
        public var toolVersion: String
        public var pipeline: DatasetManifest.PipelineInfo
        public var cursor: DatasetManifest.CursorRange
        public var columns: [DatasetManifest.ColumnInfo]
        /// Source rows read by this run: new samples, quarantined rows and rows the writer rejected.
        public var rowsRead: Int
        public var quarantine: DatasetManifest.QuarantineSummary
        public var durationSeconds: Double
        public var sourceBytes: Int

        public init(dataset: String, version: String, runId: String, createdAt: String, toolVersion: String,
                    pipeline: DatasetManifest.PipelineInfo, cursor: DatasetManifest.CursorRange, columns: [DatasetManifest.ColumnInfo],
                    rowsRead: Int, quarantine: DatasetManifest.QuarantineSummary, durationSeconds: Double, sourceBytes: Int) {
            self.dataset = dataset
            self.version = version
            self.runId = runId
            self.createdAt = createdAt
            self.toolVersion = toolVersion
            self.pipeline = pipeline
            self.cursor = cursor
            self.columns = columns
            self.rowsRead = rowsRead
            self.quarantine = quarantine
            self.durationSeconds = durationSeconds
            self.sourceBytes = sourceBytes
        }
    }

    /// A parent shard the new version lists, to be shared (hard link, server-side copy) into it.
    public struct SharedShard: Sendable, Equatable {
        public var split: String
        public var basename: String
        /// The version whose directory holds the file to share from (the parent).
        public var fromVersion: String
        /// The size index.json records, so a store can refuse a file that was truncated or replaced.
        public var bytes: Int
        /// `<split>/<basename>` inside a version.
        public var path: String { "\(split)/\(basename)" }

        public init(split: String, basename: String, fromVersion: String, bytes: Int) {
            self.split = split
            self.basename = basename
            self.fromVersion = fromVersion
            self.bytes = bytes
        }
    }

    /// The version as files: what to share from the parent, and the small files to write (index.json per split,
    /// manifest.json last, since it is what marks a version complete).
    public struct Version: Sendable {
        public var manifest: DatasetManifest
        public var indexes: [String: MDSIndex]
        public var shared: [SharedShard]
        /// `<split>/index.json` files in split order.
        public var indexFiles: [(path: String, bytes: [UInt8])] {
            indexes.keys.sorted().map { ("\($0)/\(MDSIndex.basename)", indexes[$0]!.jsonBytes()) }
        }
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// Two shards of one split share a basename (a shard listed twice, or a name collision between runs).
        case duplicateShard(split: String, basename: String)
        /// The parent's manifest and index.json disagree about a split's shards.
        case parentMismatch(split: String, detail: String)

        public var description: String {
            switch self {
            case .duplicateShard(let split, let basename): "shard \(split)/\(basename) would be listed twice"
            case .parentMismatch(let split, let detail): "the parent's manifest and \(split)/index.json disagree: \(detail)"
            }
        }
    }

    public var parent: Parent?
    /// Splits the pipeline declares; a split with no shards at all (neither inherited nor new) gets no directory.
    public var splitNames: [String]

    /// Parent shards this run rewrote without the samples it replaces: split → parent basename → the rewrite (empty
    /// when no sample is left). Written by the run, so they are staged, not shared.
    public var rewritten: [String: [String: [MDSShardEntry]]] = [:]

    public init(parent: Parent?, splitNames: [String]) {
        self.parent = parent
        self.splitNames = splitNames
    }

    /// The new version: each split lists the parent's shards first, in the parent's order, then this run's in the
    /// order they were sealed, so a reader's sample order is stable across versions.
    public func build(run: RunRecord, sealed: [String: [MDSShardEntry]]) throws(Failure) -> Version {
        let parentIndexes = parent?.indexes ?? [:]
        let splitNames = Set(splitNames).union(parentIndexes.keys).union(sealed.keys).sorted()
        var indexes: [String: MDSIndex] = [:]
        var splits: [String: DatasetManifest.SplitInfo] = [:]
        var shared: [SharedShard] = []
        var bytesWritten = 0
        var newSamples = 0
        for split in splitNames {
            var inherited = parentIndexes[split]?.shards ?? []
            let created = sealed[split] ?? []
            guard !inherited.isEmpty || !created.isEmpty else { continue }
            var inheritedRecords: [DatasetManifest.ShardRecord] = []
            if let parent {
                let records = parent.manifest.splits[split]?.shards ?? []
                guard records.map(\.basename) == inherited.map(\.storedFile.basename) else {
                    throw .parentMismatch(split: split, detail: "manifest lists \(records.count) shards, index.json \(inherited.count)")
                }
                inheritedRecords = records
                shared += inherited.filter { rewritten[split]?[$0.storedFile.basename] == nil }.map {
                    SharedShard(split: split, basename: $0.storedFile.basename, fromVersion: parent.manifest.version, bytes: $0.storedFile.bytes)
                }
                // A parent shard that held a replaced sample is listed as its rewrite, in its place (the order stays).
                if let replacements = rewritten[split] {
                    (inherited, inheritedRecords) = Self.substitute(replacements, in: inherited, records: records)
                }
            }
            var seen = Set<String>()
            for entry in inherited + created where !seen.insert(entry.storedFile.basename).inserted {
                throw .duplicateShard(split: split, basename: entry.storedFile.basename)
            }
            let createdRecords = created.map { Self.record($0, createdBy: run.version) }
            let splitNew = created.reduce(0) { $0 + $1.samples }
            bytesWritten += createdRecords.reduce(0) { $0 + $1.bytes }
            newSamples += splitNew
            indexes[split] = MDSIndex(shards: inherited + created, version: 2)
            splits[split] = DatasetManifest.SplitInfo(
                samples: (inherited + created).reduce(0) { $0 + $1.samples }, newSamples: splitNew, shards: inheritedRecords + createdRecords)
        }
        let manifest = DatasetManifest(
            dataset: run.dataset, version: run.version, parent: parent?.manifest.version, runId: run.runId, createdAt: run.createdAt,
            toolVersion: run.toolVersion, pipeline: run.pipeline, cursor: run.cursor,
            counts: .init(samples: splits.values.reduce(0) { $0 + $1.samples }, newSamples: newSamples, rowsRead: run.rowsRead,
                          quarantined: run.quarantine.count),
            splits: splits, columns: run.columns, quarantine: run.quarantine,
            stats: .init(durationSeconds: run.durationSeconds, bytesWritten: bytesWritten, sourceBytes: run.sourceBytes))
        return Version(manifest: manifest, indexes: indexes, shared: shared)
    }

    /// Parent shards replaced by their rewrites (each keeps the origin of the rows it holds).
    static func substitute(_ replacements: [String: [MDSShardEntry]], in entries: [MDSShardEntry], records: [DatasetManifest.ShardRecord])
        -> ([MDSShardEntry], [DatasetManifest.ShardRecord])
    {
        var newEntries: [MDSShardEntry] = [], newRecords: [DatasetManifest.ShardRecord] = []
        for (entry, record) in zip(entries, records) {
            guard let replacement = replacements[entry.storedFile.basename] else {
                newEntries.append(entry)
                newRecords.append(record)
                continue
            }
            newEntries += replacement
            newRecords += replacement.map { Self.record($0, createdBy: record.createdBy) }
        }
        return (newEntries, newRecords)
    }

    static func record(_ entry: MDSShardEntry, createdBy version: String) -> DatasetManifest.ShardRecord {
        DatasetManifest.ShardRecord(
            basename: entry.storedFile.basename, samples: entry.samples, bytes: entry.storedFile.bytes, rawBytes: entry.rawData.bytes,
            sha256: entry.storedFile.hashes["sha256"] ?? "", createdBy: version)
    }
}
