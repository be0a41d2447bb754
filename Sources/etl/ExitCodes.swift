import ArgumentParser
import Foundation
import Pipeline
import Postgres
import Dataset
import MDS

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
}

/// Prints an error the way a user can act on it, and turns it into the documented exit code.
func fail(_ error: Error, context: String) -> ExitCode {
    let (code, message) = classify(error)
    FileHandle.standardError.write(Data("etl: \(context): \(message)\n".utf8))
    return ExitCode(code.rawValue)
}

func classify(_ error: Error) -> (EtlExit, String) {
    switch error {
    case let error as PipelineConfigError:
        return (.invalidConfig, "invalid pipeline\n\(error.description)")
    case let error as PostgresError:
        switch error.kind {
        case .connectionFailed, .authenticationFailed, .connectionLost:
            return (.sourceUnavailable, error.description)
        default:
            return (.queryFailed, error.description)
        }
    case let error as DatasetStoreError:
        switch error.code {
        case .locked: return (.locked, error.description)
        case .notFound: return (.notFound, error.description)
        case .writeFailed, .corrupt: return (.writeFailed, error.description)
        }
    case let error as ShardError:
        return (.writeFailed, error.description)
    default:
        return (.internalError, "\(error)")
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
