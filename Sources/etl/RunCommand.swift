import ArgumentParser
import Foundation
import Logging
import Pipeline
import Dataset
import MDS
#if canImport(Glibc)
import Glibc
#endif

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Publish a new dataset version with the source rows added since the newest one.",
        discussion: """
            Safe to run from cron: a second run of the same dataset exits 6 at once; a failed or killed run publishes \
            nothing and leaves the cursor where it was; a run that finds nothing new exits 0. A version that breaks a \
            bound of the pipeline's expect: section is not published (exit 8). SIGTERM or SIGINT stops the run at the \
            next batch, releases the lock and publishes nothing (exit 10); a second signal exits at once. Every run is \
            appended to <output_root>/<dataset>/runs.jsonl (see etl status).
            """)

    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @OptionGroup var pipeline: PipelineOptions

    @Flag(help: "Rebuild from the start of the source as a new version without parent.")
    var full = false

    @Option(help: "Parallel transform workers (default: media.workers of the pipeline, else the number of cores).")
    var workers: Int?

    @Flag(name: .shortAndLong, help: "Print only errors.")
    var quiet = false

    @Option(name: .customLong("log-format"),
            help: "stderr as lines for people (text), or one JSON object per event (json: ts, level, event, run_id, …).")
    var logFormat: LogFormat = .text

    @Option(name: .customLong("metrics-file"),
            help: ArgumentHelp("Write the run's figures here in Prometheus text format at its end, success or failure (for node_exporter's textfile collector; replaced atomically).", valueName: "path"))
    var metricsFile: String?

    @Option(name: .customLong("run"), help: "Run one partition of a run planned with etl plan, instead of a whole run.")
    var runId: String?

    @Option(help: ArgumentHelp("Which partition of --run: i/N or i, counting from 0 (default: $JOB_COMPLETION_INDEX, which a Kubernetes Indexed Job sets).", valueName: "i/N"))
    var partition: String?

    func validate() throws {
        if partition != nil && runId == nil { throw ValidationError("--partition needs --run <id> (the id etl plan printed)") }
        if runId != nil && full { throw ValidationError("--full is chosen when planning: etl plan --full") }
        if let runId, let problem = RunIdentifier.problem(runId) { throw ValidationError(problem) }
        if let workers, !(1...256).contains(workers) {
            throw ValidationError("--workers must be between 1 and 256")
        }
        if let metricsFile, metricsFile.isEmpty || metricsFile.hasSuffix("/") {
            throw ValidationError("--metrics-file must name a file, e.g. /var/lib/node_exporter/textfile/etl_<pipeline>.prom")
        }
    }

    func run() throws {
        Interruption.installHandlers()
        let exitCode: @Sendable (FailureCategory) -> Int32 = { EtlExit($0).rawValue }
        let jsonLog = logFormat == .json ? makeLogListener(pipeline: pipeline.pipeline, dataset: "") : nil
        let config: PipelineConfig
        do { config = try PipelineConfig.load(path: pipeline.path) } catch {
            // No dataset is known yet, so there is no ledger to write to; the error goes to stderr (and cron's mail).
            if let jsonLog {
                let report = RunFailureReport(error)
                jsonLog.log(.error, "run.finished", ["outcome": "failed", "failure": "config", "message": .string(report.message),
                                                     "pipeline_file": .string(pipeline.path)])
                throw ExitCode(exitCode(report.category))
            }
            throw fail(error, context: pipeline.path)
        }

        let log = jsonLog.map { _ in makeLogListener(pipeline: config.name, dataset: config.dataset) }
        let warn: @Sendable (String) -> Void = { text in
            if let log { log.log(.warning, "etl.warning", ["message": .string(text)]) } else { printError(text) }
        }
        var listeners: [any RunListener] = []
        var progressInterval = 5.0
        if let log {
            listeners.append(log)
        } else if !quiet && isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb" {
            listeners.append(ProgressBarListener(width: terminalWidth()) { FileHandle.standardError.write(Data($0.utf8)) })
            progressInterval = 0.25
        } else {
            listeners.append(ConsoleListener(quiet: quiet))
        }
        // A partition is not a run of the dataset: the ledgers record the commit that publishes the partitions.
        if runId == nil {
            listeners.append(LedgerListener(.init(config), exitCode: exitCode, warn: warn))
            if let ledger = config.ledger {
                listeners.append(PostgresLedgerListener(ledger, identity: .init(config), exitCode: exitCode, warn: warn))
            }
        }
        if let metricsFile {
            listeners.append(MetricsListener(path: metricsFile, pipeline: config.name, dataset: config.dataset, exitCode: exitCode, warn: warn))
        }

        let options = RunOptions(full: full, workers: workers, listeners: listeners, progressInterval: progressInterval)
        if let runId {
            try runPartition(config, runId: runId, options: options)
            return
        }
        let outcome: RunOutcome
        do { outcome = try PipelineRunner.run(config, options: options) } catch {
            // In JSON mode the run.finished record already says what failed; a second, plain line would break parsers.
            if log != nil { throw ExitCode(exitCode(RunFailureReport(error).category)) }
            throw fail(error, context: "run \(config.name)")
        }
        switch outcome {
        case .nothingNew(let latest):
            if !quiet { print("\(config.dataset): nothing new since \(latest ?? "the start"); no version published") }
        case .published(let manifest):
            if !quiet { print(Self.summary(manifest, root: config.outputRoot)) }
        }
    }

    /// One partition of a planned run (PartitionRunner): its output waits in the run area for `etl commit`.
    private func runPartition(_ config: PipelineConfig, runId: String, options: RunOptions) throws {
        let outcome: PartitionRunner.Outcome
        do {
            outcome = try PartitionRunner.run(config, runId: runId, partition: partition,
                                              environment: ProcessInfo.processInfo.environment, options: options)
        } catch { throw fail(error, context: "run \(config.name) --run \(runId)") }
        guard !quiet else { return }
        switch outcome {
        case .completed(let record):
            print("\(config.dataset) run \(runId): partition \(record.partition)/\(record.partitions) done: \(record.rowsRead) rows read, "
                  + "\(record.samplesWritten) samples, \(record.quarantined) quarantined; publish with `etl commit \(pipeline.pipeline) --run \(runId)` once every partition is done")
        case .alreadyPublished(_, let version):
            print("\(config.dataset) run \(runId) is already published as \(version); nothing to do")
        }
    }

    private func makeLogListener(pipeline: String, dataset: String) -> LogListener {
        var logger = Logger(label: "etl") { _ in JSONLogHandler { FileHandle.standardError.write(Data($0.utf8)) } }
        logger.logLevel = .info
        return LogListener(logger: logger, pipeline: pipeline, dataset: dataset)
    }

    /// The terminal's columns, so the bar never wraps (a wrapped line cannot be redrawn with `\r`).
    private func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 80
    }

    static func summary(_ manifest: DatasetManifest, root: String) -> String {
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
