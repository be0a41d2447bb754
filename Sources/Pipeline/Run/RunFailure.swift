import Dataset
import MDS
import Postgres
import SystemIO

/// What kind of failure ended a run. Each has one documented exit code (see the CLI), so schedulers can branch on it.
public enum FailureCategory: String, Sendable, CaseIterable {
    /// The pipeline file, the command line, or the query's shape (a missing column, an unmappable type).
    case config
    /// The database cannot be reached or refused the login.
    case unreachable
    /// The source query failed.
    case query
    /// Output could not be written (disk full, permissions, a file-size limit).
    case write
    /// Another run holds the dataset, or published the version this run meant to.
    case locked
    /// The dataset or version does not exist.
    case notFound
    /// A bug: report it.
    case `internal`
    /// The built version broke a bound of the pipeline's `expect:` section; nothing was published.
    case qualityGate
    /// SIGTERM or SIGINT stopped the run at a batch boundary; nothing was published, the lock was released.
    case interrupted
}

/// An error that knows its category and whether retrying may help. Every error a run can throw conforms here, so the
/// CLI maps failures to exit codes through this one protocol, never by testing concrete types.
public protocol CategorizedFailure: Error {
    var category: FailureCategory { get }
    var isRetryable: Bool { get }
    /// The whole message for a user.
    var failureMessage: String { get }
}

extension PipelineConfigError: CategorizedFailure {
    public var category: FailureCategory { .config }
    public var isRetryable: Bool { false }
    public var failureMessage: String { "invalid pipeline\n\(description)" }
}

extension PostgresError: CategorizedFailure {
    public var category: FailureCategory {
        switch kind {
        case .connectionFailed, .authenticationFailed, .connectionLost: .unreachable
        case .invalidConninfo: .config
        case .queryFailed, .unsupportedType, .valueOutOfRange, .protocolViolation, .misuse: .query
        }
    }
    public var failureMessage: String { description }
}

extension DatasetError: CategorizedFailure {
    public var category: FailureCategory {
        switch code {
        case .locked, .conflict: .locked
        case .notFound: .notFound
        case .writeFailed, .corrupt: .write
        case .invalidLocation: .config
        }
    }
    public var failureMessage: String { description }
}

extension ShardError: CategorizedFailure {
    /// Sample-level errors are quarantined before they get here; what is left is I/O or a damaged shard.
    public var category: FailureCategory { .write }
    public var failureMessage: String { description }
}

extension SystemError: CategorizedFailure {
    public var category: FailureCategory { .write }
    public var failureMessage: String { description }
}

extension RunFailureReport {
    /// The report of any error: categorized ones say what they are; anything else is internal.
    public init(_ error: Error) {
        if let failure = error as? CategorizedFailure {
            self.init(category: failure.category, isRetryable: failure.isRetryable, message: failure.failureMessage)
        } else {
            self.init(category: .internal, isRetryable: false, message: "\(error)")
        }
    }
}
