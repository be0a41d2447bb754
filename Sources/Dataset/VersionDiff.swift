internal import Crypto
import Foundation
import MDS

/// What changed between two versions of a dataset, by source key (`__key__`).
///
/// Cost is proportional to the shards that differ: shard names are content-addressed
/// (`shard.<sha256 prefix>.mds.zstd`), so a shard both versions list under the same name in the same split holds
/// the same samples and is never read. Only the shards one side lists and the other does not are streamed.
///
/// Known limit of that shortcut: a key that sits in a shared shard *and* in a shard only one side lists (the
/// source re-published a row under the same key) is reported as added or removed rather than changed.
public struct VersionDiff: Sendable, Codable, Equatable {
    public struct Changed: Sendable, Codable, Equatable {
        public var key: String
        public var split: String
        public var columns: [String]
        public init(key: String, split: String, columns: [String]) {
            self.key = key
            self.split = split
            self.columns = columns
        }
    }

    public struct SplitSummary: Sendable, Codable, Equatable {
        public var added = 0
        public var removed = 0
        public var changed = 0
        /// Shards both versions list: not read.
        public var sharedShards = 0
        /// Shards only one version lists: read.
        public var readShards = 0
        enum CodingKeys: String, CodingKey { case added, removed, changed, sharedShards = "shared_shards", readShards = "read_shards" }
    }

    public var dataset: String
    public var from: String
    public var to: String
    public var added: [String] = []
    public var removed: [String] = []
    public var changed: [Changed] = []
    public var splits: [String: SplitSummary] = [:]
    /// For each column, how many changed samples differ in it.
    public var changedColumns: [String: Int] = [:]

    public init(dataset: String, from: String, to: String) {
        self.dataset = dataset
        self.from = from
        self.to = to
    }

    enum CodingKeys: String, CodingKey {
        case dataset, from, to, added, removed, changed, splits, changedColumns = "changed_columns"
    }

    /// Which shards of one split must be read: the ones listed by a single side.
    public struct SplitPlan: Sendable, Equatable {
        public var shared: [String]
        public var onlyFrom: [MDSShardEntry]
        public var onlyTo: [MDSShardEntry]
    }

    public static func plan(from: MDSIndex?, to: MDSIndex?) -> SplitPlan {
        let fromShards = from?.shards ?? [], toShards = to?.shards ?? []
        let fromNames = Set(fromShards.map(\.storedFile.basename)), toNames = Set(toShards.map(\.storedFile.basename))
        return SplitPlan(shared: fromShards.map(\.storedFile.basename).filter(toNames.contains),
                         onlyFrom: fromShards.filter { !toNames.contains($0.storedFile.basename) },
                         onlyTo: toShards.filter { !fromNames.contains($0.storedFile.basename) })
    }

    /// Compares the fingerprints of the samples read from each side of one split (key → column → fingerprint).
    public mutating func compare(split: String, from: [String: [String: String]], to: [String: [String: String]]) {
        var summary = splits[split] ?? SplitSummary()
        for key in SampleKey.sorted(to.keys) where from[key] == nil {
            added.append(key)
            summary.added += 1
        }
        for key in SampleKey.sorted(from.keys) where to[key] == nil {
            removed.append(key)
            summary.removed += 1
        }
        for key in SampleKey.sorted(from.keys) {
            guard let old = from[key], let new = to[key], old != new else { continue }
            let columns = Set(old.keys).union(new.keys).filter { old[$0] != new[$0] }.sorted()
            changed.append(Changed(key: key, split: split, columns: columns))
            for column in columns { changedColumns[column, default: 0] += 1 }
            summary.changed += 1
        }
        splits[split] = summary
    }

    /// How a value is compared: plain values by their text, media, bytes and arrays by a hash of their content
    /// (so holding the fingerprints of many samples costs little).
    public static func fingerprint(_ value: MDSValue) -> String {
        switch value {
        case .string(let text): "str:" + text
        case .int(let number): "int:\(number)"
        case .uint(let number): "uint:\(number)"
        case .float(let number): "float:\(number.bitPattern)"
        case .json(let text): "json:" + text
        case .bytes(let bytes): "bytes:\(bytes.count):" + sha256Hex(bytes)
        case .borrowedBytes: fingerprint(value.owned)
        case .ndarray(let array):
            "ndarray:\(array.dtype.rawValue):\(array.shape.map(String.init).joined(separator: ",")):" + sha256Hex(array.data)
        }
    }

    public static func fingerprints(_ sample: [String: MDSValue]) -> [String: String] {
        var result: [String: String] = [:]
        for (column, value) in sample where column != SampleKey.column { result[column] = fingerprint(value) }
        return result
    }

    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// Diffs two published versions of one store.
    public static func between(_ from: String, and to: String, in store: any DatasetStore) throws -> VersionDiff {
        var diff = VersionDiff(dataset: store.dataset, from: from, to: to)
        let fromManifest = try store.manifest(of: from), toManifest = try store.manifest(of: to)
        for split in Set(fromManifest.splits.keys).union(toManifest.splits.keys).sorted() {
            let fromIndex = fromManifest.splits[split] == nil ? nil : try store.index(of: from, split: split)
            let toIndex = toManifest.splits[split] == nil ? nil : try store.index(of: to, split: split)
            let plan = plan(from: fromIndex, to: toIndex)
            let fromSamples = try read(plan.onlyFrom, split: split, version: from, store: store)
            let toSamples = try read(plan.onlyTo, split: split, version: to, store: store)
            diff.compare(split: split, from: fromSamples, to: toSamples)
            diff.splits[split]!.sharedShards = plan.shared.count
            diff.splits[split]!.readShards = plan.onlyFrom.count + plan.onlyTo.count
        }
        return diff
    }

    private static func read(_ shards: [MDSShardEntry], split: String, version: String, store: any DatasetStore) throws
        -> [String: [String: String]]
    {
        var samples: [String: [String: String]] = [:]
        for entry in shards {
            let relative = "\(split)/\(entry.storedFile.basename)"
            let path = store.fileLocation(relative, of: version)
            try store.withLocalFile(relative, of: version) { local in
                try MDSShardStream.read(entry, path: local) { index, sample in
                    guard case .string(let key)? = sample[SampleKey.column] else {
                        throw DatasetError(.corrupt, path: path, "sample \(index) of \(path) has no \(SampleKey.column)")
                    }
                    samples[key] = fingerprints(sample)
                }
            }
        }
        return samples
    }
}
