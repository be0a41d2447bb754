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

    @Flag(help: "Print the pipelines as JSON.")
    var json = false

    /// One pipeline as `--json` prints it; a field is null where the table prints "-".
    struct Entry: Encodable {
        var pipeline: String
        var dataset: String?
        var latest: String?
        var samples: Int?
        var createdAt: String?
        var cursor: String?
        var problem: String?
        enum CodingKeys: String, CodingKey { case pipeline, dataset, latest, samples, createdAt = "created_at", cursor, problem }
    }

    func run() throws {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: pipelinesDirectory)) ?? [])
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        guard !names.isEmpty else {
            printError("etl: no pipeline files in \(pipelinesDirectory)/")
            throw ExitCode(EtlExit.notFound.rawValue)
        }
        var entries: [Entry] = []
        for name in names {
            let path = (pipelinesDirectory as NSString).appendingPathComponent(name)
            let pipelineName = (name as NSString).deletingPathExtension
            guard let config = try? PipelineConfig.load(path: path) else {
                entries.append(Entry(pipeline: pipelineName, problem: "invalid: run etl validate \(pipelineName)"))
                continue
            }
            guard let store = try? DatasetStores.open(outputRoot: config.outputRoot, dataset: config.dataset, storage: config.storage),
                  let latest = store.latestVersion, let manifest = try? store.manifest(of: latest) else {
                entries.append(Entry(pipeline: config.name, dataset: config.dataset, samples: 0))
                continue
            }
            entries.append(Entry(pipeline: config.name, dataset: config.dataset, latest: latest, samples: manifest.counts.samples,
                                 createdAt: manifest.createdAt, cursor: manifest.cursor.to))
        }
        if json { return printJSON(entries) }
        var rows = [["PIPELINE", "DATASET", "LATEST", "SAMPLES", "CREATED", "CURSOR"]]
        for entry in entries {
            if let problem = entry.problem {
                rows.append([entry.pipeline, "-", problem])
            } else {
                rows.append([entry.pipeline, entry.dataset ?? "-", entry.latest ?? "-", entry.samples.map(String.init) ?? "-",
                             entry.createdAt ?? "-", entry.cursor ?? "-"])
            }
        }
        print(formatTable(rows))
    }
}

/// Left-aligned columns separated by two spaces (`TextTable`).
func formatTable(_ rows: [[String]]) -> String { TextTable.render(rows) }
