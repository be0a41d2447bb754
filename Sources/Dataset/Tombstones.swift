internal import Crypto
import Foundation

/// Source keys that were forgotten (`etl forget`) and must never be published again: the dataset file `tombstones.json`,
/// `{"salt": "<hex>", "hashes": ["<sha256 hex>", …]}`. Only salted hashes are stored, never the keys: the file
/// tells whether a key was forgotten without telling which keys were. The salt is random, per dataset, made by
/// the first forget. Replaced atomically, under the dataset lock.
///
/// A run consults it for every sample (`SampleSink`): a forgotten key is skipped and counted, and never written
/// anywhere (not even to quarantine.jsonl, which would record the key again).
public struct Tombstones: Codable, Sendable, Equatable {
    public static let fileName = "tombstones.json"

    public var salt: String
    public private(set) var hashes: [String]

    enum CodingKeys: String, CodingKey { case salt, hashes }

    public init(salt: String, hashes: [String] = []) {
        self.salt = salt
        self.hashes = Array(Set(hashes)).sorted()
    }

    public static func newSalt() -> String {
        (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// sha256(salt ‖ 0x00 ‖ key), lowercase hex.
    public func hash(_ key: String) -> String {
        SHA256.hash(data: Array(salt.utf8) + [0] + Array(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Adds keys; returns how many were not there yet.
    @discardableResult
    public mutating func add(_ keys: some Sequence<String>) -> Int {
        let before = Set(hashes)
        let all = before.union(keys.map(hash))
        hashes = all.sorted()
        return all.count - before.count
    }

    /// A digest of a set of keys that names no key: sha256 over their sorted salted hashes. Recorded in the
    /// manifest's redaction entry so two redactions can be compared without the keys.
    public func digest(of keys: some Sequence<String>) -> String {
        let joined = Set(keys.map(hash)).sorted().joined(separator: "\n")
        return SHA256.hash(data: Array(joined.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The tombstones of a dataset; nil when nothing was ever forgotten.
    public static func load(from store: any DatasetStore) throws(DatasetError) -> Tombstones? {
        let path = store.datasetFileLocation(fileName)
        guard let bytes = try store.readDatasetFile(fileName) else { return nil }
        do { return try JSONDecoder().decode(Tombstones.self, from: Data(bytes)) } catch {
            throw DatasetError(.corrupt, path: path, "\(path) is not a tombstone list ({\"salt\": …, \"hashes\": […]}): \(error)")
        }
    }

    public func save(to store: any DatasetStore) throws(DatasetError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = (try? encoder.encode(self)) ?? Data()
        try store.writeDatasetFile(Tombstones.fileName, Array(data) + [0x0a])
    }
}

/// What a run asks for every sample: has this key been forgotten? Built once per run from the dataset's tombstones.
public struct TombstoneFilter: Sendable {
    private let tombstones: Tombstones?
    private let lookup: Set<String>

    public init(_ tombstones: Tombstones?) {
        self.tombstones = tombstones
        lookup = Set(tombstones?.hashes ?? [])
    }

    /// The tombstones of the dataset a staged version belongs to.
    public static func load(for staged: any StagedVersion) throws(DatasetError) -> TombstoneFilter {
        TombstoneFilter(try Tombstones.load(from: staged.datasetStore))
    }

    public var isEmpty: Bool { lookup.isEmpty }

    public func isForgotten(_ key: String) -> Bool {
        guard let tombstones, !lookup.isEmpty else { return false }
        return lookup.contains(tombstones.hash(key))
    }
}
