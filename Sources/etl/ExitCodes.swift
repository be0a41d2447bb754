import ArgumentParser
import Foundation
import Pipeline

/// The documented exit codes (README.md, `etl --help`). Cron and wrappers branch on these, so they never change meaning.
enum EtlExit: Int32 {
    case success = 0
    case internalError = 1
    case invalidConfig = 2
    case sourceUnavailable = 3
    case queryFailed = 4
    case writeFailed = 5
    case locked = 6
    case notFound = 7
    /// The built version broke a bound of `expect:`: nothing published, the cursor did not move. Retrying reads the
    /// same rows and fails the same way, so schedulers should alert rather than retry.
    case qualityGateFailed = 8
    /// SIGTERM/SIGINT stopped the run cleanly (lock released, staging removed, nothing published). Not 143 (128 +
    /// SIGTERM): that is what a shell reports for a process the signal killed outright, which tells an operator
    /// nothing about whether it cleaned up; 10 says it did, and that the next run picks up the same rows.
    case interrupted = 10

    init(_ category: FailureCategory) {
        switch category {
        case .config: self = .invalidConfig
        case .unreachable: self = .sourceUnavailable
        case .query: self = .queryFailed
        case .write: self = .writeFailed
        case .locked: self = .locked
        case .notFound: self = .notFound
        case .internal: self = .internalError
        case .qualityGate: self = .qualityGateFailed
        case .interrupted: self = .interrupted
        }
    }
}

/// Prints an error the way a user can act on it, and turns it into the documented exit code.
func fail(_ error: Error, context: String) -> ExitCode {
    let report = RunFailureReport(error)
    FileHandle.standardError.write(Data("etl: \(context): \(report.message)\n".utf8))
    return ExitCode(EtlExit(report.category).rawValue)
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
