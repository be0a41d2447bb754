import ArgumentParser
import Foundation
import Dataset
import MDS

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a dataset version: counts, splits, shards, cursor range, schema, quarantine.")

    @Argument(help: "<dataset>[@<version>] under --root (newest version by default), or the path of a version directory.")
    var target: String

    @Option(help: "The output root datasets are published under.")
    var root = "datasets"

    @Flag(help: "Print the manifest as JSON.")
    var json = false

    func run() throws {
        let manifest: DatasetManifest
        do { manifest = try resolve() } catch { throw fail(error, context: "inspect \(target)") }
        if json {
            let data = (try? manifest.encoded()) ?? Data()
            FileHandle.standardOutput.write(data)
            return
        }
        print(render(manifest))
    }

    private func resolve() throws(DatasetError) -> DatasetManifest {
        let manifestPath = (target as NSString).appendingPathComponent(DatasetManifest.fileName)
        if FileManager.default.fileExists(atPath: manifestPath) {
            let url = URL(fileURLWithPath: target)
            let store = LocalDatasetStore(outputRoot: url.deletingLastPathComponent().deletingLastPathComponent().path,
                                          dataset: url.deletingLastPathComponent().lastPathComponent)
            return try store.manifest(of: url.lastPathComponent)
        }
        let parts = target.split(separator: "@", maxSplits: 1).map(String.init)
        let store = try DatasetStores.open(outputRoot: root, dataset: parts[0])
        guard let version = parts.count > 1 ? parts[1] : try store.versions().last else {
            throw DatasetError(.notFound, path: store.location, "dataset '\(parts[0])' has no published version")
        }
        _ = store.repairPointers()
        return try store.manifest(of: version)
    }

    private func render(_ m: DatasetManifest) -> String {
        var lines: [String] = []
        lines.append("\(m.dataset)@\(m.version)  (parent: \(m.parent ?? "none"), created \(m.createdAt), etl \(m.toolVersion))")
        lines.append("pipeline   \(m.pipeline.name)  \(m.pipeline.path)  config sha256 \(m.pipeline.configSha256.prefix(12))…")
        lines.append("cursor     \(m.cursor.column) (\(m.cursor.type)): \(m.cursor.from ?? "start") → \(m.cursor.to ?? "-")")
        lines.append("samples    \(m.counts.samples) in all, \(m.counts.newSamples) new; \(m.counts.rowsRead) rows read, \(m.counts.quarantined) quarantined")
        lines.append("")
        var splitRows = [["SPLIT", "SAMPLES", "NEW", "SHARDS", "BYTES"]]
        for name in m.splits.keys.sorted() {
            let split = m.splits[name]!
            splitRows.append([name, String(split.samples), String(split.newSamples), String(split.shards.count),
                              formatBytes(split.shards.reduce(0) { $0 + $1.bytes })])
        }
        lines.append(formatTable(splitRows))
        lines.append("")
        var shardRows = [["SHARD", "SAMPLES", "BYTES", "RAW", "SHA256", "FROM"]]
        for name in m.splits.keys.sorted() {
            for shard in m.splits[name]!.shards {
                shardRows.append(["\(name)/\(shard.basename)", String(shard.samples), formatBytes(shard.bytes), formatBytes(shard.rawBytes),
                                  String(shard.sha256.prefix(12)), shard.createdBy])
            }
        }
        lines.append(formatTable(shardRows))
        lines.append("")
        var columnRows = [["COLUMN", "ENCODING", "SOURCE", "TRANSFORM"]]
        for column in m.columns { columnRows.append([column.name, column.encoding, column.source, column.transform]) }
        lines.append(formatTable(columnRows))
        if m.quarantine.count > 0 {
            lines.append("")
            lines.append("quarantine \(m.quarantine.count) rows in \(m.quarantine.file ?? "-"):")
            for (reason, count) in m.quarantine.byReason.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(reason)  \(count)")
            }
        }
        if !m.redactions.isEmpty {
            lines.append("")
            var rows = [["REDACTED AT", "SAMPLES", "METHOD", "SHARDS REWRITTEN", "REASON"]]
            for r in m.redactions {
                rows.append([r.at, String(r.keys), r.method ?? "-", r.shardsRewritten.map(String.init) ?? "-", r.reason])
            }
            lines.append(formatTable(rows))
        }
        return lines.joined(separator: "\n")
    }
}

func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}
