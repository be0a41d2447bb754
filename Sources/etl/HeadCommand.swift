import ArgumentParser
import Dataset
import Foundation
import MDS

struct HeadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "head",
        abstract: "Print a version's first samples (or one by key), media summarized; optionally extract them as files.",
        discussion: """
            Media is shown as dtype, shape, size and sha256. --extract DIR writes <DIR>/<split>-<key>/<column>.<ext>: \
            uint8 frames (T,H,W,C) as PNG per frame, int16/float32 PCM (frames, channels) as WAV, jpeg/png/bytes as they are.
            """)

    @Argument(help: "<dataset>[@<version>] (newest version by default).")
    var target: String

    @Option(help: "Only this split (default: every split, in name order).")
    var split: String?

    @Option(name: .short, help: "How many samples.")
    var n = 3

    @Option(help: "Only the sample with this source key.")
    var key: String?

    @Option(help: "Write the samples as files under this directory.")
    var extract: String?

    @Option(name: .customLong("sample-rate"), help: "Sample rate written into extracted WAV files (MDS does not record it).")
    var sampleRate = 16000

    @OptionGroup var root: RootOption

    func validate() throws {
        _ = try DatasetTarget(target)
        guard n >= 1 else { throw ValidationError("-n must be at least 1") }
        guard sampleRate >= 1 else { throw ValidationError("--sample-rate must be positive") }
    }

    private struct Enough: Error {}

    func run() throws {
        let parsed = try DatasetTarget(target)
        do {
            let (store, version) = try parsed.resolve(root: root.root)
            let manifest = try store.manifest(of: version)
            let splits = split.map { [$0] } ?? manifest.splits.keys.sorted()
            if let split, manifest.splits[split] == nil {
                throw DatasetError(.notFound, path: "\(store.location)/\(version)/\(split)",
                                   "\(store.dataset)@\(version) has no split '\(split)' (it has \(manifest.splits.keys.sorted().joined(separator: ", ")))")
            }
            let directory = "\(store.location)/\(version)"
            var printed = 0
            var blocks: [String] = []
            do {
                for name in splits {
                    let index = try store.index(of: version, split: name)
                    for entry in index.shards {
                        let encodings = Dictionary(uniqueKeysWithValues: zip(entry.columnNames, entry.columnEncodings))
                        _ = try store.withLocalFile("\(name)/\(entry.storedFile.basename)", of: version) { shard in
                            try MDSShardStream.read(entry, path: shard) { position, sample in
                                let sampleKey = sample[SampleKey.column].flatMap { if case .string(let text) = $0 { text } else { nil } } ?? "?"
                                if let key, sampleKey != key { return }
                                blocks.append(render(sample, encodings: encodings, title: "\(store.dataset)@\(version) \(name) \(SampleKey.column)=\(sampleKey)"))
                                if let extract { try write(sample, encodings: encodings, to: "\(extract)/\(name)-\(Self.fileSafe(sampleKey))") }
                                printed += 1
                                if printed >= n || key != nil { throw Enough() }
                            }
                        }
                    }
                }
            } catch is Enough {}
            if printed == 0 {
                if let key { throw DatasetError(.notFound, path: directory, "\(store.dataset)@\(version) has no sample with key '\(key)'") }
                print("\(store.dataset)@\(version): no samples")
                return
            }
            print(blocks.joined(separator: "\n\n"))
            if let extract { print("\nextracted \(printed) sample\(printed == 1 ? "" : "s") under \(extract)/") }
        } catch { throw fail(error, context: "head \(target)") }
    }

    /// A key as one path component: keys are source values and may hold `/` or start with a dot.
    static func fileSafe(_ key: String) -> String {
        let safe = String(key.map { $0 == "/" || $0 == "\0" ? "_" : $0 })
        return safe.hasPrefix(".") ? "_" + safe.dropFirst() : safe
    }

    private func render(_ sample: [String: MDSValue], encodings: [String: String], title: String) -> String {
        var rows: [[String]] = []
        for column in sample.keys.sorted() where column != SampleKey.column {
            rows.append([column, encodings[column] ?? "?", SampleFiles.summary(sample[column]!)])
        }
        return title + "\n" + TextTable.render(rows).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
    }

    private func write(_ sample: [String: MDSValue], encodings: [String: String], to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (column, value) in sample where column != SampleKey.column {
            for file in SampleFiles.files(column: column, encoding: encodings[column] ?? "", value: value, sampleRate: sampleRate) {
                let path = "\(directory)/\(file.name)"
                guard FileManager.default.createFile(atPath: path, contents: Data(file.bytes)) else {
                    throw DatasetError(.writeFailed, path: path, "cannot write \(path)")
                }
            }
        }
    }
}
