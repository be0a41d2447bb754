import ArgumentParser
import Foundation
import Pipeline
import Dataset
import MDS

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the pipelines and the newest version of each one's dataset.")

    @Option(name: .customLong("pipelines-dir"), help: "Where pipeline files are.")
    var pipelinesDirectory = "pipelines"

    func run() throws {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: pipelinesDirectory)) ?? [])
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        guard !names.isEmpty else {
            printError("etl: no pipeline files in \(pipelinesDirectory)/")
            throw ExitCode(EtlExit.notFound.rawValue)
        }
        var rows = [["PIPELINE", "DATASET", "LATEST", "SAMPLES", "CREATED", "CURSOR"]]
        for name in names {
            let path = (pipelinesDirectory as NSString).appendingPathComponent(name)
            let pipelineName = (name as NSString).deletingPathExtension
            guard let config = try? PipelineConfig.load(path: path) else {
                rows.append([pipelineName, "-", "invalid: run etl validate \(pipelineName)", "", "", ""])
                continue
            }
            guard let store = try? DatasetStores.open(outputRoot: config.outputRoot, dataset: config.dataset),
                  let latest = store.latestVersion, let manifest = try? store.manifest(of: latest) else {
                rows.append([config.name, config.dataset, "-", "0", "-", "-"])
                continue
            }
            rows.append([config.name, config.dataset, latest, String(manifest.counts.samples), manifest.createdAt,
                         manifest.cursor.to ?? "-"])
        }
        print(formatTable(rows))
    }
}

/// Left-aligned columns separated by two spaces.
func formatTable(_ rows: [[String]]) -> String {
    let widths = (0..<(rows.map(\.count).max() ?? 0)).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
    return rows.map { row in
        row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces)
    }.joined(separator: "\n")
}
