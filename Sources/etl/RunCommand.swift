import ArgumentParser
import Foundation
import Pipeline
import Dataset
import MDS

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Publish a new dataset version with the source rows added since the newest one.",
        discussion: "Safe to run from cron: a second run of the same dataset exits 6 at once; a failed or killed run publishes nothing and leaves the cursor where it was; a run that finds nothing new exits 0.")

    @OptionGroup var pipeline: PipelineOptions

    @Flag(help: "Rebuild from the start of the source as a new version without parent.")
    var full = false

    @Option(help: "Parallel transform workers (default: media.workers of the pipeline, else the number of cores).")
    var workers: Int?

    @Flag(name: .shortAndLong, help: "Print only errors.")
    var quiet = false

    func validate() throws {
        if let workers, !(1...256).contains(workers) {
            throw ValidationError("--workers must be between 1 and 256")
        }
    }

    func run() throws {
        let config: PipelineConfig
        do { config = try PipelineConfig.load(path: pipeline.path) } catch { throw fail(error, context: pipeline.path) }
        let options = RunOptions(full: full, workers: workers, listeners: [ConsoleListener(quiet: quiet)])
        let outcome: RunOutcome
        do { outcome = try PipelineRunner.run(config, options: options) } catch {
            throw fail(error, context: "run \(config.name)")
        }
        switch outcome {
        case .nothingNew(let latest):
            if !quiet { print("\(config.dataset): nothing new since \(latest ?? "the start"); no version published") }
        case .published(let manifest):
            if !quiet { print(summary(manifest, root: config.outputRoot)) }
        }
    }

    private func summary(_ manifest: DatasetManifest, root: String) -> String {
        let splits = manifest.splits.keys.sorted().map { "\($0) +\(manifest.splits[$0]!.newSamples)" }.joined(separator: ", ")
        let parent = manifest.parent.map { " (parent \($0))" } ?? " (full build)"
        var text = "published \(manifest.dataset)/\(manifest.version)\(parent): \(manifest.counts.newSamples) new samples [\(splits)], \(manifest.counts.samples) in all"
        if manifest.quarantine.count > 0 {
            let reasons = manifest.quarantine.byReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            text += "\n  quarantined \(manifest.quarantine.count) rows: \(reasons)"
        }
        text += "\n  cursor \(manifest.cursor.column): \(manifest.cursor.from ?? "start") → \(manifest.cursor.to ?? "-")"
        text += "\n  \((root as NSString).appendingPathComponent(manifest.dataset))/\(manifest.version)"
        return text
    }
}
