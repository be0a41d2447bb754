import ArgumentParser
import Dataset
import Foundation

struct GcCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove old versions and the shard files no remaining version lists.",
        discussion: """
            Never removes the newest version or a pinned one (etl pin). Runs under the dataset lock, so it never races \
            a run (exits 6 while one is going). --dry-run prints the same plan and removes nothing.
            """)

    @Argument(help: "The dataset.")
    var dataset: String

    @Option(help: "Keep the newest N versions.")
    var keep: Int?

    @Option(name: .customLong("older-than"), help: "Remove versions created more than this long ago: 30d, 12h, 2w.")
    var olderThan: String?

    @Flag(name: .customLong("dry-run"), help: "Print what would be removed; remove nothing.")
    var dryRun = false

    @OptionGroup var root: RootOption

    @Flag(help: "Print the plan as JSON.")
    var json = false

    func validate() throws {
        guard (keep == nil) != (olderThan == nil) else { throw ValidationError("give exactly one of --keep N and --older-than D") }
        if let keep, keep < 1 { throw ValidationError("--keep must be at least 1 (the newest version is always kept)") }
        if let olderThan, GarbageCollection.parseAge(olderThan) == nil {
            throw ValidationError("--older-than '\(olderThan)' is not an age such as 30d, 12h, 2w, 45m")
        }
    }

    func run() throws {
        let rule: GarbageCollection.Rule = keep.map { .keepNewest($0) } ?? .olderThan(Date().addingTimeInterval(-GarbageCollection.parseAge(olderThan!)!))
        let plan: GarbageCollection.Plan
        do {
            let store = try DatasetTarget.maintainedStore(root: root.root, dataset: dataset)
            let lock = try store.lock(runId: "gc")
            defer { withExtendedLifetime(lock) {} }
            let candidates = try store.versions().map { (version) throws(DatasetError) in GarbageCollection.Candidate(try store.manifest(of: version)) }
            plan = GarbageCollection.plan(candidates, pins: try PinList.load(from: store), rule: rule,
                                         sharedFiles: store.sharesFilesBetweenVersions)
            if !dryRun { try GarbageCollection.apply(plan, in: store) }
        } catch { throw fail(error, context: "gc \(dataset)") }
        if json { return printJSON(plan) }
        print(Self.render(plan, dataset: dataset, dryRun: dryRun))
    }

    static func render(_ plan: GarbageCollection.Plan, dataset: String, dryRun: Bool) -> String {
        var lines: [String] = []
        if plan.remove.isEmpty {
            lines.append("\(dataset): nothing to remove")
        } else {
            lines.append("\(dataset): \(dryRun ? "would remove" : "removed") \(plan.remove.joined(separator: " ")); "
                         + "\(dryRun ? "would free" : "freed") \(plan.freedShards.count) shard file\(plan.freedShards.count == 1 ? "" : "s"), \(formatBytes(plan.freedBytes))")
        }
        for (version, reason) in plan.spared.sorted(by: { $0.key < $1.key }) { lines.append("kept \(version): \(reason)") }
        lines.append("keeping \(plan.keep.joined(separator: " "))")
        if dryRun && !plan.freedShards.isEmpty { lines += plan.freedShards.map { "  \($0)" } }
        return lines.joined(separator: "\n")
    }
}
