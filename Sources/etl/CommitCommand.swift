import ArgumentParser
import Dataset
import Foundation
import Pipeline

struct CommitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit",
        abstract: "Publish one version from every partition of a planned run.",
        discussion: """
            Refuses, publishing nothing, while a partition has not finished (exit 6, naming each one), when a version \
            was published after the plan was made (exit 6: plan a new run), or when the pipeline file changed since \
            (exit 2). Committing a run that is already published does nothing (exit 0). Quality gates (expect:) apply \
            as to any run (exit 8).
            """)

    @OptionGroup var pipeline: PipelineOptions

    @Option(name: .customLong("run"), help: "The id etl plan printed.")
    var runId: String

    @Flag(name: .shortAndLong, help: "Print only errors.")
    var quiet = false

    func validate() throws {
        if let problem = RunIdentifier.problem(runId) { throw ValidationError(problem) }
    }

    func run() throws {
        Interruption.installHandlers()
        let config: PipelineConfig
        do { config = try PipelineConfig.load(path: pipeline.path) } catch { throw fail(error, context: pipeline.path) }
        let exitCode: @Sendable (FailureCategory) -> Int32 = { EtlExit($0).rawValue }
        let listeners: [any RunListener] = [
            ConsoleListener(quiet: quiet),
            LedgerListener(.init(config), exitCode: exitCode, warn: { printError($0) }),
        ]
        let outcome: PartitionCommitter.Outcome
        do { outcome = try PartitionCommitter.commit(config, runId: runId, options: RunOptions(listeners: listeners)) } catch {
            throw fail(error, context: "commit \(config.name) run \(runId)")
        }
        guard !quiet else { return }
        switch outcome {
        case .published(let manifest):
            print(RunCommand.summary(manifest, root: config.outputRoot))
        case .nothingNew(let latest):
            print("\(config.dataset): run \(runId) read nothing new since \(latest ?? "the start"); no version published")
        case .alreadyPublished(let version):
            print("\(config.dataset): run \(runId) is already published as \(version); nothing to do")
        }
    }
}
