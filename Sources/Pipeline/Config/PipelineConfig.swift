import Foundation
import MDS
import ObjectStorage

/// A pipeline file, decoded and checked. Everything a run needs that does not depend on the database.
public struct PipelineConfig: Sendable {
    public var name: String
    public var dataset: String
    /// Where dataset versions are published, resolved against the working directory.
    public var outputRoot: String
    /// Where `output_root:` is in the file (the file's start when it is not given).
    public var outputRootLocation: SourceLocation
    public var source: SourceConfig
    public var columns: [ColumnConfig]
    public var split: SplitConfig
    public var shards: ShardConfig
    public var media: MediaConfig
    /// `storage:`: where and how to reach an `s3://` output root (endpoint, region, addressing, profile).
    public var storage = S3StorageOptions()
    /// `expect:` bounds a new version must meet to be published (QualityGates); empty when the file has none.
    public var expect = Expectations()
    /// `ledger:` a PostgreSQL table that also receives every run's ledger record; nil when the file has none.
    public var ledger: LedgerConfig?
    /// `dedupe:`: samples whose value of a column was already published are not written again.
    public var dedupe: DedupeConfig?
    /// The file it was read from, and the sha256 of its bytes: recorded in every manifest it publishes.
    public var path: String
    public var sha256: String
}

public struct SourceConfig: Sendable {
    /// libpq conninfo (`key=value …` or a `postgresql://` URI) after `${VAR}` expansion; empty = libpq's PG* defaults.
    public var connection: String
    /// Where `connection:` is in the file, when it is there: a malformed string is reported at this line.
    public var connectionLocation: SourceLocation?
    public var query: String
    public var queryLocation: SourceLocation
    /// The column that orders rows and bounds incremental runs (e.g. a bigserial id or an updated_at timestamp).
    public var cursorColumn: String
    public var cursorLocation: SourceLocation
    /// The column that identifies a source row; written to every sample as `__key__`.
    public var keyColumn: String
    public var keyLocation: SourceLocation
    /// `source.change_column`: the column a corrected row moves (e.g. updated_at). It is the cursor, and a row read
    /// again under a key an earlier version holds replaces that sample instead of becoming a second one.
    public var changeColumn: String?
    /// `source.retry`: how transient faults of the source are retried.
    public var retry: RetryPolicy = .default
}

/// `ledger:` where a copy of the run ledger goes (never the source database unless its connection says so).
public struct LedgerConfig: Sendable {
    /// libpq conninfo after `${VAR}` expansion, from `connection:` or from the variable `connection_env:` names.
    public var connection: String
    /// `table:`, possibly schema-qualified (`ops.etl_runs`); created if missing.
    public var table: String
}

public struct ColumnConfig: Sendable {
    /// The output (MDS) column name.
    public var name: String
    /// The source column it is computed from.
    public var from: String
    var transform: any ColumnTransform
    public var location: SourceLocation
    /// Where `from:` is (or the name, when it is implied): problems with the source column point here.
    public var fromLocation: SourceLocation
}

public struct SplitConfig: Sendable {
    /// Rows with the same value here always land in the same split (e.g. a user id), so no user leaks across splits.
    /// nil: the source key is the group.
    public var groupColumn: String?
    public var groupLocation: SourceLocation?
    public var seed: String
    /// In the order given; the ratios sum to 1.
    public var ratios: [(name: String, ratio: Double)]

    public var names: [String] { ratios.map(\.name) }
}

public struct ShardConfig: Sendable {
    public var sizeLimit: Int
    /// nil: no compression.
    public var zstdLevel: Int?
    public var hashes: [MDSHashAlgorithm]
    /// `shards.checkpoint_every`: after this many source bytes a run seals every open shard (at the next change of
    /// cursor value) and records a checkpoint, so a run that dies resumes there instead of starting over.
    public var checkpointEvery: Int = 256 << 20
}

public struct MediaConfig: Sendable {
    /// Parallel transform workers; defaults to the number of cores.
    public var workers: Int
    /// Where path columns are resolved; paths outside it are refused.
    public var mediaRoot: String?
    public var maxInputBytes: Int
    public var maxPixels: Int
    public var maxDimension: Int
    public var maxDurationSeconds: Double
    public var decodeTimeoutSeconds: Double
}

/// Every problem found in a pipeline file.
public struct PipelineConfigError: Error, CustomStringConvertible, Sendable {
    public var issues: [ConfigIssue]

    public var description: String {
        let lines = issues.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }.map(\.description)
        return lines.joined(separator: "\n") + "\n\(issues.count) error\(issues.count == 1 ? "" : "s") in the pipeline file"
    }
}
