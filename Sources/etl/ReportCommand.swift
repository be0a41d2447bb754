import ArgumentParser
import Dataset
import Foundation
import MDS

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write one self-contained HTML page about a version: card, histograms, thumbnails, audio, quarantine.",
        discussion: """
            Reads at most --max-samples samples (split by split in name order) and says so on the page. Label-like \
            columns are int/str columns with at most 20 distinct values among them. Media is inlined as data URIs, so \
            the page needs no other file. Versions are immutable: the page is written outside the dataset, by default \
            to ./<dataset>-<version>-report.html.
            """)

    @Argument(help: "<dataset>[@<version>] (newest version by default).")
    var target: String

    @Option(name: .short, help: "Where to write the page (default: ./<dataset>-<version>-report.html).")
    var output: String?

    @Option(name: .customLong("max-samples"), help: "Samples read for histograms and thumbnails.")
    var maxSamples = 20_000

    @Option(name: .customLong("sample-rate"), help: "Sample rate of the audio players (MDS does not record it).")
    var sampleRate = 16000

    @OptionGroup var root: RootOption

    func validate() throws {
        _ = try DatasetTarget(target)
        guard maxSamples >= 1 else { throw ValidationError("--max-samples must be at least 1") }
        guard sampleRate >= 1 else { throw ValidationError("--sample-rate must be positive") }
    }

    private struct Enough: Error {}

    func run() throws {
        let parsed = try DatasetTarget(target)
        let path: String
        do {
            let (store, version) = try parsed.resolve(root: root.root)
            let manifest = try store.manifest(of: version)
            var limits = ReportSampler.Limits()
            limits.maxSamples = maxSamples
            var sampler = ReportSampler(limits: limits)
            let columns = manifest.columns.map(\.name)
            do {
                for split in manifest.splits.keys.sorted() {
                    let index = try store.index(of: version, split: split)
                    for entry in index.shards {
                        try store.withLocalFile("\(split)/\(entry.storedFile.basename)", of: version) { shard in
                            try MDSShardStream.read(entry, path: shard) { _, sample in
                                if sampler.isFull {
                                    sampler.markTruncated()
                                    throw Enough()
                                }
                                sampler.add(split: split, sample: sample, columns: columns)
                            }
                        }
                    }
                }
            } catch is Enough {}
            var quarantine = QuarantineExamples()
            if let file = manifest.quarantine.file, let bytes = try? store.read(file, of: version) {
                for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") { quarantine.add(line: line) }
            }
            let report = VersionReport(manifest: manifest, sampler: sampler, quarantine: quarantine, sampleRate: sampleRate)
            path = output ?? "\(store.dataset)-\(version)-report.html"
            do { try Data(report.html().utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
                throw DatasetError(.writeFailed, path: path, "cannot write \(path): \(error.localizedDescription)")
            }
        } catch { throw fail(error, context: "report \(target)") }
        print("wrote \(path)")
    }
}
