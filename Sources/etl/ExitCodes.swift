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

    init(_ category: FailureCategory) {
        switch category {
        case .config: self = .invalidConfig
        case .unreachable: self = .sourceUnavailable
        case .query: self = .queryFailed
        case .write: self = .writeFailed
        case .locked: self = .locked
        case .notFound: self = .notFound
        case .internal: self = .internalError
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
