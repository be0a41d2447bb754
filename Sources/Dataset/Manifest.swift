import Foundation

/// `manifest.json` of one dataset version: what data engineers read and what retraining jobs consume. The source
/// cursor lives here, so data and cursor are published together in one rename.
public struct DatasetManifest: Codable, Sendable, Equatable {
    public static let currentFormatVersion = 1
    public static let fileName = "manifest.json"

    public var formatVersion: Int
    public var dataset: String
    public var version: String
    public var parent: String?
    public var runId: String
    public var createdAt: String
    public var toolVersion: String
    public var pipeline: PipelineInfo
    public var cursor: CursorRange
    public var counts: Counts
    public var splits: [String: SplitInfo]
    public var columns: [ColumnInfo]
    public var quarantine: QuarantineSummary
    public var stats: RunStats
    public var redactions: [Redaction]
    /// The source snapshot the run read in, for commit-order-safe incremental runs (nil in versions of etl 0.1).
    public var source: SourceSnapshotRecord?
    /// The file listing every (cursor, key) this run consumed, so a later run can tell a late-committed row from one
    /// it already published (nil in versions of etl 0.1).
    public var rowsFile: String?
    /// The version's key index (`keys.idx`: key → shard, and published dedupe values), when its pipeline replaces or
    /// dedupes; nil otherwise.
    public var keyIndex: String?

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", dataset, version, parent, runId = "run_id", createdAt = "created_at"
        case toolVersion = "tool_version", pipeline, cursor, counts, splits, columns, quarantine, stats, redactions
        case source, rowsFile = "rows_file", keyIndex = "key_index"
    }

    /// What a run knew about the source's transactions when it read. Transactions invisible to this snapshot — still in
    /// flight, or started later — are the only ones whose rows a later run may still find below `cursor.to`.
    public struct SourceSnapshotRecord: Codable, Sendable, Equatable {
        /// `pg_current_snapshot()` as text: `xmin:xmax:xip,…`.
        public var snapshot: String
        public var xmin: Int64
        public var xmax: Int64
        /// The source's clock (`clock_timestamp()`) just after the snapshot was taken, µs since 1970 UTC.
        public var takenAt: Int64
        /// The start of the oldest transaction open on the source just before the snapshot (or the time of that look,
        /// if none was open), µs since 1970 UTC; nil where it cannot be known (a hot standby, sessions hidden from this
        /// role, prepared transactions).
        public var oldestTransactionStart: Int64?
        public var standby: Bool
        enum CodingKeys: String, CodingKey {
            case snapshot, xmin, xmax, takenAt = "taken_at", oldestTransactionStart = "oldest_transaction_start", standby
        }
        public init(snapshot: String, xmin: Int64, xmax: Int64, takenAt: Int64, oldestTransactionStart: Int64?, standby: Bool) {
            self.snapshot = snapshot
            self.xmin = xmin
            self.xmax = xmax
            self.takenAt = takenAt
            self.oldestTransactionStart = oldestTransactionStart
            self.standby = standby
        }
    }

    public struct PipelineInfo: Codable, Sendable, Equatable {
        public var name: String
        public var path: String
        public var configSha256: String
        enum CodingKeys: String, CodingKey { case name, path, configSha256 = "config_sha256" }
        public init(name: String, path: String, configSha256: String) {
            self.name = name
            self.path = path
            self.configSha256 = configSha256
        }
    }

    /// The source rows this version covers: cursor values in (from, to]. `from` is nil for a version without parent.
    /// Values are text that PostgreSQL parses back to the same value, with the column's type to cast it to.
    public struct CursorRange: Codable, Sendable, Equatable {
        public var column: String
        public var type: String
        public var from: String?
        public var to: String?
        /// This run also read rows with cursor in (revisit_from, from] that no earlier version had published: rows of
        /// transactions that committed after the previous run had read past their cursor value.
        public var revisitFrom: String?
        enum CodingKeys: String, CodingKey { case column, type, from, to, revisitFrom = "revisit_from" }
        public init(column: String, type: String, from: String?, to: String?, revisitFrom: String? = nil) {
            self.column = column
            self.type = type
            self.from = from
            self.to = to
            self.revisitFrom = revisitFrom
        }
    }

    public struct Counts: Codable, Sendable, Equatable {
        /// Samples in the whole version (parent's included).
        public var samples: Int
        /// Samples this run added.
        public var newSamples: Int
        /// Source rows this run read (new samples + quarantined).
        public var rowsRead: Int
        public var quarantined: Int
        /// Samples of earlier versions this run replaced with a changed row's new sample (`source.change_column`).
        public var replaced: Int?
        /// Rows not written because their dedupe value was already published in the lineage or earlier in the run (`dedupe:`).
        public var deduplicated: Int?
        enum CodingKeys: String, CodingKey {
            case samples, newSamples = "new_samples", rowsRead = "rows_read", quarantined, replaced, deduplicated
        }
        public init(samples: Int, newSamples: Int, rowsRead: Int, quarantined: Int) {
            self.samples = samples
            self.newSamples = newSamples
            self.rowsRead = rowsRead
            self.quarantined = quarantined
        }
    }

    public struct SplitInfo: Codable, Sendable, Equatable {
        public var samples: Int
        public var newSamples: Int
        public var shards: [ShardRecord]
        enum CodingKeys: String, CodingKey { case samples, newSamples = "new_samples", shards }
        public init(samples: Int, newSamples: Int, shards: [ShardRecord]) {
            self.samples = samples
            self.newSamples = newSamples
            self.shards = shards
        }
    }

    /// One shard file as it sits on disk, and the version whose run wrote it (shared shards keep their origin).
    public struct ShardRecord: Codable, Sendable, Equatable {
        public var basename: String
        public var samples: Int
        public var bytes: Int
        public var rawBytes: Int
        public var sha256: String
        public var createdBy: String
        enum CodingKeys: String, CodingKey { case basename, samples, bytes, rawBytes = "raw_bytes", sha256, createdBy = "created_by" }
        public init(basename: String, samples: Int, bytes: Int, rawBytes: Int, sha256: String, createdBy: String) {
            self.basename = basename
            self.samples = samples
            self.bytes = bytes
            self.rawBytes = rawBytes
            self.sha256 = sha256
            self.createdBy = createdBy
        }
    }

    public struct ColumnInfo: Codable, Sendable, Equatable {
        public var name: String
        public var encoding: String
        public var source: String
        public var transform: String
        public init(name: String, encoding: String, source: String, transform: String) {
            self.name = name
            self.encoding = encoding
            self.source = source
            self.transform = transform
        }
    }

    public struct QuarantineSummary: Codable, Sendable, Equatable {
        public var count: Int
        public var byReason: [String: Int]
        /// Rows this run rejected; earlier runs' rejections stay in their own versions.
        public var file: String?
        enum CodingKeys: String, CodingKey { case count, byReason = "by_reason", file }
        public init(count: Int, byReason: [String: Int], file: String?) {
            self.count = count
            self.byReason = byReason
            self.file = file
        }
    }

    public struct RunStats: Codable, Sendable, Equatable {
        public var durationSeconds: Double
        public var bytesWritten: Int
        public var sourceBytes: Int
        enum CodingKeys: String, CodingKey { case durationSeconds = "duration_seconds", bytesWritten = "bytes_written", sourceBytes = "source_bytes" }
        public init(durationSeconds: Double, bytesWritten: Int, sourceBytes: Int) {
            self.durationSeconds = durationSeconds
            self.bytesWritten = bytesWritten
            self.sourceBytes = sourceBytes
        }
    }

    /// Samples removed from this version after it was published (`etl forget`). Never names the keys.
    public struct Redaction: Codable, Sendable, Equatable {
        public var at: String
        /// Samples removed from this version.
        public var keys: Int
        public var reason: String
        /// How they were chosen: `key` or `group`.
        public var method: String?
        /// sha256 over the sorted salted hashes of the forgotten keys (tombstones.json's salt): compares two
        /// redactions without revealing a key.
        public var keysDigest: String?
        /// Shards rewritten without the samples (the others are untouched and still shared).
        public var shardsRewritten: Int?
        enum CodingKeys: String, CodingKey {
            case at, keys, reason, method, keysDigest = "keys_digest", shardsRewritten = "shards_rewritten"
        }
        public init(at: String, keys: Int, reason: String, method: String? = nil, keysDigest: String? = nil, shardsRewritten: Int? = nil) {
            self.at = at
            self.keys = keys
            self.reason = reason
            self.method = method
            self.keysDigest = keysDigest
            self.shardsRewritten = shardsRewritten
        }
    }

    public init(dataset: String, version: String, parent: String?, runId: String, createdAt: String, toolVersion: String,
                pipeline: PipelineInfo, cursor: CursorRange, counts: Counts, splits: [String: SplitInfo],
                columns: [ColumnInfo], quarantine: QuarantineSummary, stats: RunStats) {
        self.formatVersion = Self.currentFormatVersion
        self.dataset = dataset
        self.version = version
        self.parent = parent
        self.runId = runId
        self.createdAt = createdAt
        self.toolVersion = toolVersion
        self.pipeline = pipeline
        self.cursor = cursor
        self.counts = counts
        self.splits = splits
        self.columns = columns
        self.quarantine = quarantine
        self.stats = stats
        self.redactions = []
        self.source = nil
        self.rowsFile = nil
        self.keyIndex = nil
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self) + Data("\n".utf8)
    }

    public static func decode(_ data: Data) throws -> DatasetManifest {
        let decoder = JSONDecoder()
        return try decoder.decode(DatasetManifest.self, from: data)
    }
}
