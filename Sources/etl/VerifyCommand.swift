import ArgumentParser
import Dataset
import Foundation

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute every hash and decode every shard and sample of a version (or all versions).",
        discussion: """
            Checks that every shard a version lists exists, its size and sha256 (stored and decompressed), its zstd \
            frame and checksum, its MDS layout and every sample, and that index.json and manifest.json agree. Reads \
            each shard in bounded memory. Exits 9 naming each bad file and what is wrong.
            """)

    static let verificationFailed: Int32 = 9

    @Argument(help: "<dataset>[@<version>] (newest version by default).")
    var target: String

    @Flag(help: "Verify every version of the dataset.")
    var all = false

    @OptionGroup var root: RootOption

    @Flag(help: "Print the reports as JSON.")
    var json = false

    func validate() throws {
        let parsed = try DatasetTarget(target)
        if all && parsed.version != nil { throw ValidationError("give either <dataset>@<version> or --all, not both") }
    }

    func run() throws {
        let parsed = try DatasetTarget(target)
        let store: any DatasetStore
        let versions: [String]
        do {
            let resolved = try parsed.resolve(root: root.root)
            store = resolved.store
            versions = all ? try store.versions() : [resolved.version]
        } catch { throw fail(error, context: "verify \(target)") }

        if Forget.isInterrupted(in: store) {
            printError("etl: verify \(target): a forget was interrupted in \(store.location); the next `etl forget \(parsed.dataset) …` finishes it")
        }
        let verifier = VersionVerifier(store: store)
        let reports = versions.map { verifier.verify($0) }
        if json {
            printJSON(reports)
        } else {
            for report in reports { print(Self.render(report)) }
        }
        let bad = reports.filter { !$0.ok }
        if !bad.isEmpty {
            printError("etl: verify \(target): \(bad.map { "\($0.dataset)@\($0.version)" }.joined(separator: ", ")) failed verification")
            throw ExitCode(Self.verificationFailed)
        }
    }

    static func render(_ report: VerificationReport) -> String {
        let name = "\(report.dataset)@\(report.version)"
        let counts = "\(report.splits) splits, \(report.shards) shards, \(report.samples) samples, \(formatBytes(report.bytes))"
        guard !report.ok else { return "\(name): ok (\(counts))" }
        let lines = report.problems.map { "  \($0)" }
        return (["\(name): FAILED, \(report.problems.count) problem\(report.problems.count == 1 ? "" : "s") (\(counts))"] + lines)
            .joined(separator: "\n")
    }
}
