import MDS

/// What `etl plan` fixes for a partitioned run, stored as `<dataset>/_runs/<run id>/plan.json` before any partition
/// starts: the parent version, the pipeline file's hash, the number of partitions, the cursor range every partition
/// reads, and the source snapshot the version will record (so the next run's exactly-once window covers rows that
/// commit late). Partitions and the commit read it; nothing changes it.
public struct RunPlan: Codable, Sendable, Equatable {
    public static let fileName = "plan.json"
    public static let currentFormat = 1

    public var format = currentFormat
    public var runId: String
    public var dataset: String
    public var pipeline: DatasetManifest.PipelineInfo
    /// The version the run builds on (nil for a first or `--full` run).
    public var parent: String?
    /// The newest version when the plan was made: the commit publishes only if it still is (compare-and-swap).
    public var latest: String?
    public var partitions: Int
    /// What the committed version's manifest records as its cursor (from = the parent's cursor.to).
    public var cursor: DatasetManifest.CursorRange
    /// The output columns, as described from the source at plan time (the commit needs no database).
    public var columns: [DatasetManifest.ColumnInfo]
    /// Every partition reads the rows with `readAfter < cursor ≤ readThrough` (readAfter nil: from the start). The
    /// lower bound includes the exactly-once re-read window; `readThrough` is the highest cursor visible to the plan's
    /// snapshot, nil when it saw no row to read.
    public var readAfter: String?
    public var readThrough: String?
    /// Versions whose rows.bin lists rows of the re-read window that are already published (skipped, not read twice).
    public var publishedIn: [String]
    /// The snapshot the plan read in, as a single run records its own.
    public var source: DatasetManifest.SourceSnapshotRecord
    public var createdAt: String

    enum CodingKeys: String, CodingKey {
        case format, runId = "run_id", dataset, pipeline, parent, latest, partitions, cursor, columns, readAfter = "read_after"
        case readThrough = "read_through", publishedIn = "published_in", source, createdAt = "created_at"
    }

    public init(runId: String, dataset: String, pipeline: DatasetManifest.PipelineInfo, parent: String?, latest: String?, partitions: Int,
                cursor: DatasetManifest.CursorRange, columns: [DatasetManifest.ColumnInfo], readAfter: String?, readThrough: String?, publishedIn: [String],
                source: DatasetManifest.SourceSnapshotRecord, createdAt: String) {
        self.runId = runId
        self.dataset = dataset
        self.pipeline = pipeline
        self.parent = parent
        self.latest = latest
        self.partitions = partitions
        self.cursor = cursor
        self.columns = columns
        self.readAfter = readAfter
        self.readThrough = readThrough
        self.publishedIn = publishedIn
        self.source = source
        self.createdAt = createdAt
    }
}

/// The record a partition writes last, atomically, once its output is durable (`_runs/<run id>/partition-<i>.json`):
/// which attempt's directory holds its output, the shards it sealed per split, and its counts. The commit uses only
/// what completion records name, so a partition that died left nothing the commit could pick up, and a rerun that
/// replaced the record replaced the output: never both.
public struct PartitionCompletion: Codable, Sendable, Equatable {
    public var runId: String
    public var partition: Int
    public var partitions: Int
    public var configSha256: String
    /// The attempt (a directory of the partition's area) whose files this record describes.
    public var attempt: String
    public var sealed: [String: [MDSShardEntry]]
    public var rowsRead: Int
    public var samplesWritten: Int
    public var quarantined: Int
    public var alreadyPublished: Int
    public var sourceBytes: Int
    public var quarantine: DatasetManifest.QuarantineSummary
    /// The attempt's rows.bin (every (cursor, key) it consumed), nil when it read nothing.
    public var rowsFile: String?
    public var finishedAt: String
    /// What the partition fetched from the source (rows, approximate decoded bytes): the rows of its re-read window a
    /// version holds are looked at keys only. Summed into the commit's ledger line; nil in records of older etl.
    public var rowsFetched: Int?
    public var bytesFetched: Int?

    enum CodingKeys: String, CodingKey {
        case runId = "run_id", partition, partitions, configSha256 = "config_sha256", attempt, sealed, rowsRead = "rows_read"
        case samplesWritten = "samples_written", quarantined, alreadyPublished = "already_published", sourceBytes = "source_bytes"
        case quarantine, rowsFile = "rows_file", finishedAt = "finished_at", rowsFetched = "rows_fetched", bytesFetched = "bytes_fetched"
    }

    public init(runId: String, partition: Int, partitions: Int, configSha256: String, attempt: String,
                sealed: [String: [MDSShardEntry]], rowsRead: Int, samplesWritten: Int, quarantined: Int, alreadyPublished: Int,
                sourceBytes: Int, quarantine: DatasetManifest.QuarantineSummary, rowsFile: String?, finishedAt: String) {
        self.runId = runId
        self.partition = partition
        self.partitions = partitions
        self.configSha256 = configSha256
        self.attempt = attempt
        self.sealed = sealed
        self.rowsRead = rowsRead
        self.samplesWritten = samplesWritten
        self.quarantined = quarantined
        self.alreadyPublished = alreadyPublished
        self.sourceBytes = sourceBytes
        self.quarantine = quarantine
        self.rowsFile = rowsFile
        self.finishedAt = finishedAt
    }
}

/// The store operations of partitioned runs: a run area per planned run next to the versions, invisible to readers,
/// where the plan, each partition's output and its completion record live until the commit publishes one version from
/// them (through `StagedVersion`, like any run). Separate from `DatasetStore` so another store (S3) adopts it in a file
/// of its own: the local store implements it in `LocalDatasetStore+RunArea.swift`.
public protocol RunArea: DatasetStore {
    /// Stores the plan of a new run. `.conflict` when a plan with this run id exists (read it with `plan(ofRun:)`).
    func createRun(_ plan: RunPlan) throws(DatasetError)
    /// The plan of a run; `.notFound` when there is none.
    func plan(ofRun runId: String) throws(DatasetError) -> RunPlan
    /// Held by the one process working on (or committing) a partition; `.locked` at once when another holds it.
    func lockPartition(_ index: Int, runId: String) throws(DatasetError) -> DatasetLock
    /// A fresh place for one attempt of a partition (call with its lock held). Attempts that no completion record names
    /// (killed ones) are removed first.
    func stagePartition(_ index: Int, runId: String, attempt: String) throws(DatasetError) -> any StagedVersion
    /// Makes an attempt's output the partition's: every file durable, then the record written atomically (last), then
    /// the attempts it supersedes removed.
    func completePartition(_ record: PartitionCompletion) throws(DatasetError)
    /// The completion record of a partition, nil while it has none.
    func completion(ofPartition index: Int, runId: String) throws(DatasetError) -> PartitionCompletion?
    /// Puts a file of a completed partition (`<split>/<shard>`) into a staged version without sending its bytes through
    /// this process; refuses a file whose size is not `expectedBytes`.
    func sharePartitionFile(_ path: String, of record: PartitionCompletion, into staged: any StagedVersion,
                            expectedBytes: Int) throws(DatasetError)
    /// A local path to read a file of a completed partition from (rows.bin, quarantine.jsonl).
    func localPartitionFile(_ path: String, of record: PartitionCompletion) throws(DatasetError) -> String
    /// After the commit: removes the partitions' output (the version holds its shards now); the plan and the
    /// completion records stay, so a repeated commit or a late partition can tell the run was published. Best effort.
    func removePartitionOutput(runId: String)
}
