import Foundation
import MDS

/// One thing wrong with a published version: the file and what is wrong with it.
public struct VerificationProblem: Sendable, Equatable, Codable, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { message.contains(path) ? message : "\(path): \(message)" }
}

/// What `etl verify` found in one version.
public struct VerificationReport: Sendable, Codable {
    public var dataset: String
    public var version: String
    public var splits: Int = 0
    public var shards: Int = 0
    /// Shards whose bytes were read (a hard link of a shard already verified in this session is not read again).
    public var shardsRead: Int = 0
    public var samples: Int = 0
    public var bytes: Int = 0
    public var problems: [VerificationProblem] = []
    public var ok: Bool { problems.isEmpty }
}

/// Pure checks of a version's small files against each other: the manifest against every split's index.json.
public enum VersionConsistency {
    /// `indexes[split]` is nil when that split's index.json could not be read (the caller reports why).
    public static func problems(manifest: DatasetManifest, indexes: [String: MDSIndex], dataset: String, version: String,
                                versionPath: String) -> [VerificationProblem] {
        var problems: [VerificationProblem] = []
        let manifestPath = "\(versionPath)/\(DatasetManifest.fileName)"
        func problem(_ path: String, _ message: String) { problems.append(VerificationProblem(path: path, message: message)) }
        if manifest.dataset != dataset { problem(manifestPath, "names dataset '\(manifest.dataset)', but it is in '\(dataset)'") }
        if manifest.version != version { problem(manifestPath, "names version '\(manifest.version)', but it is in directory '\(version)'") }
        var total = 0
        for split in manifest.splits.keys.sorted() {
            let info = manifest.splits[split]!
            let indexPath = "\(versionPath)/\(split)/\(MDSIndex.basename)"
            let listed = info.shards.reduce(0) { $0 + $1.samples }
            total += info.samples
            if listed != info.samples {
                problem(manifestPath, "split \(split) counts \(info.samples) samples, but its shards add up to \(listed)")
            }
            guard let index = indexes[split] else { continue }
            if index.sampleCount != info.samples {
                problem(indexPath, "lists \(index.sampleCount) samples, manifest.json says split \(split) has \(info.samples)")
            }
            let names = index.shards.map(\.storedFile.basename)
            if names != info.shards.map(\.basename) {
                let onlyIndex = Set(names).subtracting(info.shards.map(\.basename)).sorted()
                let onlyManifest = Set(info.shards.map(\.basename)).subtracting(names).sorted()
                var detail: [String] = []
                if !onlyIndex.isEmpty { detail.append("only index.json lists \(onlyIndex.joined(separator: ", "))") }
                if !onlyManifest.isEmpty { detail.append("only manifest.json lists \(onlyManifest.joined(separator: ", "))") }
                if detail.isEmpty { detail.append("the order differs") }
                problem(indexPath, "lists other shards than manifest.json: \(detail.joined(separator: "; "))")
            }
            let records = Dictionary(info.shards.map { ($0.basename, $0) }, uniquingKeysWith: { first, _ in first })
            for entry in index.shards {
                guard let record = records[entry.storedFile.basename] else { continue }
                var differences: [String] = []
                if record.samples != entry.samples { differences.append("samples \(entry.samples) vs \(record.samples)") }
                if record.bytes != entry.storedFile.bytes { differences.append("bytes \(entry.storedFile.bytes) vs \(record.bytes)") }
                if record.rawBytes != entry.rawData.bytes { differences.append("raw bytes \(entry.rawData.bytes) vs \(record.rawBytes)") }
                if let sha = entry.storedFile.hashes["sha256"], sha.lowercased() != record.sha256.lowercased() {
                    differences.append("sha256 \(sha.prefix(16))… vs \(record.sha256.prefix(16))…")
                }
                if !differences.isEmpty {
                    problem(indexPath, "disagrees with manifest.json about \(entry.storedFile.basename) (index.json vs manifest.json): \(differences.joined(separator: ", "))")
                }
            }
        }
        if total != manifest.counts.samples {
            problem(manifestPath, "counts \(manifest.counts.samples) samples in all, but its splits add up to \(total)")
        }
        return problems
    }
}

/// Recomputes everything a version's files claim: the manifest against the indexes, every shard's presence, size,
/// hashes (stored and decompressed), zstd frame and checksum, MDS layout and every sample (each must carry its
/// `__key__`). Streams each shard (`MDSShardStream`) from a local file the store provides, so memory stays bounded
/// whatever the shard size. Keeps the stored files it has verified (`VersionFile.storage`): a shard shared by
/// several versions (a hard link on local disk) is read once per session.
public final class VersionVerifier {
    public let store: any DatasetStore
    private var verifiedStorage: [String: (samples: Int, problem: String?)] = [:]

    public init(store: any DatasetStore) { self.store = store }

    public func verify(_ version: String) -> VerificationReport {
        var report = VerificationReport(dataset: store.dataset, version: version)
        let versionPath = "\(store.location)/\(version)"
        func problem(_ path: String, _ message: String) { report.problems.append(VerificationProblem(path: path, message: message)) }

        let manifest: DatasetManifest
        do { manifest = try store.manifest(of: version) } catch {
            problem(error.path, error.message)
            return report
        }
        var indexes: [String: MDSIndex] = [:]
        for split in manifest.splits.keys.sorted() {
            do { indexes[split] = try store.index(of: version, split: split) } catch { problem(error.path, error.message) }
        }
        let listed: [VersionFile]
        do { listed = try store.files(of: version) } catch {
            problem(error.path, error.message)
            return report
        }
        let files = Dictionary(listed.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        // A split in the version that the manifest does not list is data a loader may read but the manifest does not vouch for.
        let splitsWithIndex = Set(listed.compactMap { file -> String? in
            let parts = file.path.split(separator: "/")
            return parts.count == 2 && parts[1] == MDSIndex.basename ? String(parts[0]) : nil
        })
        for name in splitsWithIndex.sorted() where manifest.splits[name] == nil {
            problem("\(versionPath)/\(name)/\(MDSIndex.basename)", "split '\(name)' is on disk but manifest.json does not list it")
        }
        report.problems += VersionConsistency.problems(manifest: manifest, indexes: indexes, dataset: store.dataset,
                                                       version: version, versionPath: versionPath)
        report.splits = manifest.splits.count
        for split in indexes.keys.sorted() {
            for entry in indexes[split]!.shards {
                report.shards += 1
                let relative = "\(split)/\(entry.storedFile.basename)"
                let path = "\(versionPath)/\(relative)"
                guard let file = files[relative] else {
                    problem(path, "is missing: \(split)/\(MDSIndex.basename) lists it")
                    continue
                }
                report.bytes += entry.storedFile.bytes
                if let storage = file.storage, let known = verifiedStorage[storage] {
                    report.samples += known.samples
                    if let message = known.problem { problem(path, message) }
                    continue
                }
                report.shardsRead += 1
                var outcome: (samples: Int, problem: String?) = (0, nil)
                var localPath: String?
                do {
                    try store.withLocalFile(relative, of: version) { local in
                        localPath = local
                        try MDSShardStream.read(entry, path: local, verifyHashes: true) { index, sample in
                            guard case .string? = sample[SampleKey.column] else {
                                throw ShardError(.corruptShard, path: path, "shard \(path): sample \(index) has no string \(SampleKey.column)")
                            }
                            outcome.samples += 1
                        }
                    }
                } catch {
                    // A downloaded copy's temporary path means nothing to the user: name the file in the store.
                    outcome.problem = localPath.map { "\(error)".replacingOccurrences(of: $0, with: path) } ?? "\(error)"
                }
                if let storage = file.storage { verifiedStorage[storage] = outcome }
                report.samples += outcome.samples
                if let message = outcome.problem { problem(path, message) }
            }
        }
        return report
    }
}

/// The source key every sample carries.
public enum SampleKey {
    public static let column = "__key__"

    /// Keys in a stable, human order: numbers by value, then text.
    public static func sorted(_ keys: some Sequence<String>) -> [String] {
        keys.sorted { a, b in
            switch (Int64(a), Int64(b)) {
            case let (x?, y?): x < y
            case (.some, nil): true
            case (nil, .some): false
            default: a < b
            }
        }
    }
}
