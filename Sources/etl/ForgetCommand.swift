import ArgumentParser
import Dataset
import Foundation
import Pipeline

struct ForgetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Remove samples by source key (or group value) from every version, and keep them out of later runs.",
        discussion: """
            Rewrites only the shards holding them (untouched shards stay shared), updates each version's index.json, \
            manifest.json (a redaction entry with a salted digest, never the keys) and quarantine.jsonl, under the \
            dataset lock. Salted hashes of the keys go to <root>/<dataset>/tombstones.json; a later run skips those \
            keys and says how many it skipped. --where-group needs the pipeline's split.group_column among the \
            samples' columns (or --group-column naming one).
            """)

    @Argument(help: "The dataset.")
    var dataset: String

    @Option(name: .customLong("key"), parsing: .upToNextOption, help: "Source keys to forget.")
    var keys: [String] = []

    @Option(name: .customLong("keys-file"), help: "A file with one source key per line.")
    var keysFile: String?

    @Option(name: .customLong("where-group"), help: "Forget every sample of this group value.")
    var group: String?

    @Option(name: .customLong("group-column"), help: "The sample column holding the group (default: the pipeline's split.group_column).")
    var groupColumn: String?

    @Option(help: "Why, recorded in each version's redaction entry.")
    var reason = "forget request"

    @OptionGroup var root: RootOption

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        let selectors = [!keys.isEmpty, keysFile != nil, group != nil].filter { $0 }.count
        guard selectors == 1 else { throw ValidationError("give exactly one of --key K…, --keys-file F and --where-group G") }
        if groupColumn != nil && group == nil { throw ValidationError("--group-column goes with --where-group") }
    }

    func run() throws {
        let report: Forget.Report
        do {
            let store = try DatasetTarget.maintainedStore(root: root.root, dataset: dataset)
            let lock = try store.lock(runId: "forget")
            defer { withExtendedLifetime(lock) {} }
            report = try Forget.run(try selector(store), reason: reason, store: store)
        } catch let error as ValidationError { throw error } catch { throw fail(error, context: "forget \(dataset)") }
        if json { return printJSON(report) }
        if report.resumed { print("\(dataset): finished an interrupted forget first") }
        var rows = [["VERSION", "SAMPLES REMOVED", "SHARDS REWRITTEN"]]
        for version in report.versions { rows.append([version.version, String(version.samplesRemoved), String(version.shardsRewritten)]) }
        print("\(dataset): \(report.keysFound) key\(report.keysFound == 1 ? "" : "s") found and removed; \(report.tombstonesAdded) new tombstone\(report.tombstonesAdded == 1 ? "" : "s")")
        if !report.versions.isEmpty { print(TextTable.render(rows)) }
    }

    private func selector(_ store: any DatasetStore) throws -> Forget.Selector {
        if let keysFile {
            guard let text = try? String(contentsOfFile: keysFile, encoding: .utf8) else {
                throw ValidationError("cannot read the keys file \(keysFile)")
            }
            let keys = Set(text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
            guard !keys.isEmpty else { throw ValidationError("\(keysFile) holds no key") }
            return .keys(keys)
        }
        if let group {
            let manifest = try store.manifest(of: try store.versions().last!)
            let column = try groupColumn ?? defaultGroupColumn(manifest)
            guard manifest.columns.contains(where: { $0.name == column }) else {
                throw ValidationError("""
                    the samples of \(dataset) have no column '\(column)' (columns: \(manifest.columns.map(\.name).joined(separator: ", "))), \
                    so they cannot be selected by group; add the group column to the pipeline's columns, or forget by --key
                    """)
            }
            return .group(column: column, value: group)
        }
        return .keys(Set(keys))
    }

    /// The sample column holding the pipeline's `split.group_column`: one of that name, or a plain column read from it.
    private func defaultGroupColumn(_ manifest: DatasetManifest) throws -> String {
        guard let config = try? PipelineConfig.load(path: manifest.pipeline.path) else {
            throw ValidationError("cannot read the pipeline file \(manifest.pipeline.path) to find its split.group_column; give --group-column")
        }
        guard let source = config.split.groupColumn else {
            throw ValidationError("pipeline \(config.name) has no split.group_column (the key is the group): forget by --key")
        }
        if manifest.columns.contains(where: { $0.name == source }) { return source }
        return manifest.columns.first { $0.source == source && $0.transform == "value" }?.name ?? source
    }
}
