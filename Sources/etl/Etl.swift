import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@main
struct Etl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "etl",
        abstract: "Turns user feedback in PostgreSQL into versioned MDS training datasets.",
        discussion: """
            Exit codes: 0 success (also: nothing new to publish), 1 internal error, 2 invalid pipeline file or usage, \
            3 source database unreachable or authentication failed, 4 source query failed, 5 output could not be written \
            (disk full, permissions), 6 another run holds the dataset's lock, 7 dataset or version not found, \
            8 a quality gate (expect:) failed, 9 verification failed (etl verify found a bad file; each one is named with \
            what is wrong), 10 interrupted by SIGTERM/SIGINT (stopped cleanly, nothing published).
            """,
        version: "0.2.0",
        subcommands: [RunCommand.self, ValidateCommand.self, ListCommand.self, InspectCommand.self, StatusCommand.self,
                      DatasetsCommand.self, VerifyCommand.self, DiffCommand.self, HeadCommand.self, PinCommand.self,
                      UnpinCommand.self, GcCommand.self, ForgetCommand.self, ReportCommand.self, PlanCommand.self, CommitCommand.self])

    static func main() {
        // Past a file-size limit, writes must fail with EFBIG (reported, exit 5) instead of the default SIGXFSZ
        // killing the process without a word. Broken pipes (etl inspect | head) are errors, not deaths, too.
        signal(SIGXFSZ, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            // ArgumentParser's usage errors exit 64; etl documents 2 for any usage or configuration problem.
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(EtlExit.invalidConfig.rawValue)
            }
            exit(withError: error)
        }
    }
}
