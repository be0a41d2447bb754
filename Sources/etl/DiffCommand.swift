import ArgumentParser
import Dataset
import Foundation

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Samples added, removed and changed between two versions, by source key.",
        discussion: """
            Plain values are compared as values; media, bytes and arrays by a hash of their content. Shards both \
            versions list (same content-addressed name) are not read, so the cost follows what differs.
            """)

    @Argument(help: "<dataset>@<version> to compare from.")
    var from: String

    @Argument(help: "<dataset>@<version> to compare to.")
    var to: String

    @OptionGroup var root: RootOption

    @Flag(help: "Print the diff as JSON, listing every key.")
    var json = false

    @Option(name: .customLong("limit"), help: "Keys listed per kind in the text output.")
    var limit = 20

    func validate() throws {
        let a = try DatasetTarget(from), b = try DatasetTarget(to)
        guard a.dataset == b.dataset else { throw ValidationError("both versions must be of one dataset ('\(a.dataset)' vs '\(b.dataset)')") }
        guard a.version != nil, b.version != nil else { throw ValidationError("give both versions: <dataset>@<version>") }
    }

    func run() throws {
        let a = try DatasetTarget(from), b = try DatasetTarget(to)
        let diff: VersionDiff
        do {
            let (store, fromVersion) = try a.resolve(root: root.root)
            let (_, toVersion) = try b.resolve(root: root.root)
            diff = try VersionDiff.between(fromVersion, and: toVersion, in: store)
        } catch { throw fail(error, context: "diff \(from) \(to)") }
        if json { return printJSON(diff) }
        print(Self.render(diff, limit: limit))
    }

    static func render(_ diff: VersionDiff, limit: Int) -> String {
        var lines = ["\(diff.dataset)@\(diff.from) → \(diff.dataset)@\(diff.to): \(diff.added.count) added, \(diff.removed.count) removed, \(diff.changed.count) changed", ""]
        var rows = [["SPLIT", "ADDED", "REMOVED", "CHANGED", "SHARDS SHARED", "SHARDS READ"]]
        for (split, s) in diff.splits.sorted(by: { $0.key < $1.key }) {
            rows.append([split, String(s.added), String(s.removed), String(s.changed), String(s.sharedShards), String(s.readShards)])
        }
        lines.append(TextTable.render(rows))
        if !diff.changedColumns.isEmpty {
            lines.append("")
            lines.append(TextTable.render([["COLUMN", "CHANGED"]] + diff.changedColumns.sorted { $0.key < $1.key }.map { [$0.key, String($0.value)] }))
        }
        func list(_ title: String, _ keys: [String]) {
            guard !keys.isEmpty else { return }
            let shown = keys.prefix(limit).joined(separator: " ")
            lines.append("\(title): \(shown)\(keys.count > limit ? " … (\(keys.count - limit) more; --json lists all)" : "")")
        }
        lines.append("")
        list("added", diff.added)
        list("removed", diff.removed)
        list("changed", diff.changed.map { "\($0.key)(\($0.columns.joined(separator: ",")))" })
        while lines.last == "" { lines.removeLast() }
        return lines.joined(separator: "\n")
    }
}
