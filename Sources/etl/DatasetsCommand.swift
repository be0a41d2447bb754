import ArgumentParser
import Dataset
import Foundation

struct DatasetsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datasets",
        abstract: "List every dataset under the output root with its versions.",
        discussion: "One line per version: created, parent, samples per split, size of its shard files, pinned, redactions.")

    @OptionGroup var root: RootOption

    @Flag(help: "Print the catalog as JSON.")
    var json = false

    func run() throws {
        let catalog: DatasetCatalog
        do { catalog = try DatasetCatalog.load(root: root.root) } catch { throw fail(error, context: "datasets") }
        if json { return printJSON(catalog) }
        guard !catalog.datasets.isEmpty else {
            print("no datasets under \(root.root)/")
            return
        }
        print(Self.render(catalog))
    }

    static func render(_ catalog: DatasetCatalog) -> String {
        let splits = Set(catalog.datasets.flatMap { $0.versions.flatMap(\.splits.keys) }).sorted()
        var rows = [["DATASET", "VERSION", "CREATED", "PARENT"] + splits.map { $0.uppercased() } + ["SAMPLES", "SIZE", "PINNED", "REDACTIONS"]]
        var notes: [String] = []
        for entry in catalog.datasets {
            for version in entry.versions {
                rows.append([entry.dataset, version.version, version.createdAt, version.parent ?? "-"]
                            + splits.map { version.splits[$0].map(String.init) ?? "-" }
                            + [String(version.samples), formatBytes(version.bytes), version.pinned ? "yes" : "", String(version.redactions)])
            }
            for (version, problem) in entry.unreadable.sorted(by: { $0.key < $1.key }) {
                notes.append("\(entry.dataset)@\(version): unreadable: \(problem)")
            }
        }
        return ([TextTable.render(rows)] + notes).joined(separator: "\n")
    }
}
