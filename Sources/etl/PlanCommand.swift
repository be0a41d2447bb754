import ArgumentParser
import Dataset
import Foundation
import Pipeline

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Fix a partitioned run: its cursor range, snapshot, parent version and number of partitions.",
        discussion: """
            Writes <output_root>/<dataset>/_runs/<run id>/plan.json. Then run every partition, on any machines, with \
            `etl run <pipeline> --run <id> --partition i/N` (in a Kubernetes Indexed Job, i comes from \
            JOB_COMPLETION_INDEX), and publish one version from all of them with `etl commit <pipeline> --run <id>`. \
            Planning again with the same --run-id, pipeline file and --partitions keeps the existing plan (exit 0). \
            The run id is printed alone on stdout's last line.
            """)

    @OptionGroup var pipeline: PipelineOptions

    @Option(help: "How many partitions the run is split into (1…1024).")
    var partitions: Int

    @Option(name: .customLong("run-id"), help: "The run's id (letters, digits, . _ -); default: the UTC time and a random suffix.")
    var runId: String?

    @Flag(help: "Plan a rebuild from the start of the source as a version without parent.")
    var full = false

    @Flag(name: .shortAndLong, help: "Print only the run id (and errors).")
    var quiet = false

    func validate() throws {
        do { try PartitionSpec.checkCount(partitions) } catch { throw ValidationError("--partitions: \(error)") }
        if let runId, let problem = RunIdentifier.problem(runId) { throw ValidationError(problem) }
    }

    func run() throws {
        let config: PipelineConfig
        do { config = try PipelineConfig.load(path: pipeline.path) } catch { throw fail(error, context: pipeline.path) }
        let outcome: PartitionPlanner.Outcome
        do {
            outcome = try PartitionPlanner.plan(config, partitions: partitions, runId: runId, full: full) { event in
                if case .notice(let text) = event, !quiet { printError("etl: \(text)") }
            }
        } catch { throw fail(error, context: "plan \(config.name)") }
        let plan: RunPlan
        switch outcome {
        case .planned(let made):
            plan = made
            if !quiet { print(describe(made, name: pipeline.pipeline)) }
        case .existing(let kept):
            plan = kept
            if !quiet { print("\(config.dataset): run \(kept.runId) is already planned; kept as it is") }
        }
        print(plan.runId)
    }

    private func describe(_ plan: RunPlan, name: String) -> String {
        let range = plan.readThrough.map { "\(plan.cursor.column) in (\(plan.readAfter ?? "start"), \($0)]" } ?? "nothing new to read"
        return """
            planned \(plan.dataset) run \(plan.runId) on \(plan.parent ?? "no version"): \(plan.partitions) partition\(plan.partitions == 1 ? "" : "s"), \(range)
              each partition: etl run \(name) --run \(plan.runId) --partition i/\(plan.partitions)
              then:           etl commit \(name) --run \(plan.runId)
            """
    }
}
