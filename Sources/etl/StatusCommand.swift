import ArgumentParser
import Foundation
import Dataset
import Pipeline

/// The run ledger as a table: did last night's runs happen, and how did they end?
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the recent runs (published, nothing new, failed) from the run ledger, newest first.",
        discussion: """
            Without <pipeline>, every dataset under --root. <pipeline> is a pipeline name or file (its output_root \
            and dataset are used), else a dataset name under --root. Exits 7 when there is no ledger to show.
            """)

    @Argument(help: "A pipeline name or file, or a dataset name under --root.")
    var pipeline: String?

    @Option(name: .customLong("pipelines-dir"), help: "Where pipeline names are looked up.")
    var pipelinesDirectory = "pipelines"

    @Option(help: "The output root datasets are published under (when no pipeline file names one).")
    var root = "datasets"

    @Flag(help: "Print the records as a JSON array (the ledger's own fields), newest first.")
    var json = false

    @Option(name: .customShort("n"), help: "How many runs to show.")
    var count = 10

    func validate() throws {
        if count < 1 { throw ValidationError("-n must be at least 1") }
    }

    func run() throws {
        var records: [RunRecord] = []
        do {
            for store in try stores() { records += try store.runLedger.records() }
        } catch { throw fail(error, context: "status") }
        guard !records.isEmpty else {
            printError("etl: no runs recorded \(pipeline.map { "for '\($0)'" } ?? "under \(root)/") yet")
            throw ExitCode(EtlExit.notFound.rawValue)
        }
        // Newest first; records of one ledger are in append order, so the sort is stable within a dataset.
        let recent = Array(records.enumerated().sorted { ($0.element.startedAt, $0.offset) > ($1.element.startedAt, $1.offset) }
            .map(\.element).prefix(count))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = (try? encoder.encode(recent)) ?? Data("[]".utf8)
            FileHandle.standardOutput.write(data + Data("\n".utf8))
            return
        }
        print(Self.render(recent))
    }

    private func stores() throws -> [any DatasetStore] {
        if let pipeline {
            let location = try PipelineOptions.parse([pipeline, "--pipelines-dir", pipelinesDirectory])
            if FileManager.default.fileExists(atPath: location.path) {
                let config = try PipelineConfig.load(path: location.path)
                return [try DatasetStores.open(outputRoot: config.outputRoot, dataset: config.dataset, storage: config.storage)]
            }
            return [try DatasetStores.open(outputRoot: root, dataset: pipeline)]
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        return try names.map { name throws(DatasetError) in try DatasetStores.open(outputRoot: root, dataset: name) }
    }

    /// The table (pure, so a test can hold it whole). Times are UTC to the second; ERROR is the message's first line.
    static func render(_ records: [RunRecord]) -> String {
        var rows = [["STARTED", "RUN", "PIPELINE", "OUTCOME", "EXIT", "ROWS", "SAMPLES", "QUARANTINED", "VERSION", "CURSOR", "DURATION", "ERROR"]]
        for record in records {
            let cursor = record.outcome == .published ? "\(record.cursorFrom ?? "start")→\(record.cursorTo ?? "-")" : (record.cursorTo ?? "start")
            let error = record.error.map { firstLine in
                let line = firstLine.split(separator: "\n").first.map(String.init) ?? ""
                return line.count > 80 ? String(line.prefix(79)) + "…" : line
            } ?? ""
            rows.append([
                secondsUTC(record.startedAt), String((record.runId ?? "-").prefix(8)), record.pipeline, record.outcome.rawValue,
                String(record.exitCode), String(record.rowsRead), String(record.samplesWritten), String(record.quarantined),
                record.versionPublished ?? "-", cursor, String(format: "%.1fs", record.durationSeconds), error,
            ])
        }
        return formatTable(rows)
    }

    /// `2026-05-01T02:00:03.123Z` → `2026-05-01T02:00:03Z`.
    static func secondsUTC(_ timestamp: String) -> String {
        guard let dot = timestamp.firstIndex(of: "."), timestamp.hasSuffix("Z") else { return timestamp }
        return String(timestamp[..<dot]) + "Z"
    }
}
