internal import Crypto
import Foundation
import MDS
import SystemIO

/// 16 bytes of a SHA-256: what the key index stores instead of a key or a value. Compared as bytes (big-endian words),
/// the order the index file is sorted in.
public struct KeyHash: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public static func < (a: KeyHash, b: KeyHash) -> Bool { (a.high, a.low) < (b.high, b.low) }

    /// A source key (`__key__`). The domain byte keeps a key and a dedupe value with the same text apart.
    public static func ofKey(_ key: String) -> KeyHash { digest(domain: 0x4B, Array(key.utf8)) }

    /// A column value, for deduplication: the same value gives the same hash whatever sample holds it.
    /// The hash of an output value: a type tag, then its bytes, fed to the hasher as they are (a large bytes value is
    /// not copied). Borrowed bytes (a bytea still in libpq's buffer) hash as the same bytes owned, since an index
    /// rebuilt from shards reads them back as `.bytes`.
    public static func ofValue(_ value: MDSValue) -> KeyHash {
        var hasher = SHA256()
        hasher.update(data: [0x56])
        func tagged(_ tag: UInt8, _ bytes: UnsafeRawBufferPointer) {
            hasher.update(data: [tag])
            hasher.update(bufferPointer: bytes)
        }
        switch value {
        case .string(let text): hasher.update(data: [1] + Array(text.utf8))
        case .int(let number): withUnsafeBytes(of: number.littleEndian) { tagged(2, $0) }
        case .uint(let number): withUnsafeBytes(of: number.littleEndian) { tagged(3, $0) }
        case .float(let number): withUnsafeBytes(of: number.bitPattern.littleEndian) { tagged(4, $0) }
        case .json(let text): hasher.update(data: [5] + Array(text.utf8))
        case .bytes(let data): data.withUnsafeBytes { tagged(6, $0) }
        case .borrowedBytes(let data): data.withUnsafeBytes { tagged(6, $0) }
        case .ndarray(let array):
            let shape = array.shape.flatMap { withUnsafeBytes(of: Int64($0).littleEndian, Array.init) }
            hasher.update(data: [7] + Array(array.dtype.rawValue.utf8) + [0] + shape + [0])
            array.data.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        }
        return KeyHash(bytes: Array(hasher.finalize())[0..<16])
    }

    private static func digest(domain: UInt8, _ bytes: [UInt8]) -> KeyHash {
        var hasher = SHA256()
        hasher.update(data: [domain])
        hasher.update(data: bytes)
        let digest = Array(hasher.finalize())
        return KeyHash(bytes: digest[0..<16])
    }

    init(bytes: ArraySlice<UInt8>) {
        var high: UInt64 = 0, low: UInt64 = 0
        let start = bytes.startIndex
        for offset in 0..<8 { high = high << 8 | UInt64(bytes[start + offset]) }
        for offset in 8..<16 { low = low << 8 | UInt64(bytes[start + offset]) }
        self.init(high: high, low: low)
    }

    func append(to buffer: inout [UInt8]) {
        withUnsafeBytes(of: high.bigEndian) { buffer.append(contentsOf: $0) }
        withUnsafeBytes(of: low.bigEndian) { buffer.append(contentsOf: $0) }
    }

    public var description: String { String(format: "%016llx%016llx", high, low) }
}

/// `keys.idx` of a version: which source keys it holds and in which shard, and the dedupe values it published, without
/// reading a shard. Written by runs of pipelines with `source.change_column` or `dedupe:` (and kept right by
/// `etl forget`), inherited from the parent and merged with the run's own keys, so a version's index covers its whole
/// lineage. Lookups binary-search the memory-mapped file: memory stays at a few pages however many keys there are.
///
/// Layout (integers little-endian, hashes as 16 raw bytes):
///
///     "ETLKIDX1"
///     u32 length, UTF-8      the dedupe rule the dedupe section was made with ("" when none)
///     u32 shard count        then per shard: u32 length, UTF-8 "<split>/<basename>" ("" for a slot no longer used)
///     u64 key count          then per key, sorted by hash: key hash (16), u32 shard slot        — 20 bytes each
///     u64 dedupe count       then per value, sorted: value hash (16), key hash of its sample (16) — 32 bytes each
public struct KeyIndex: Sendable {
    public static let fileName = "keys.idx"
    static let magic = Array("ETLKIDX1".utf8)
    static let keyEntrySize = 20
    static let dedupeEntrySize = 32

    /// The rule its dedupe section follows (`column:<name>`), "" when none.
    public let dedupeRule: String
    /// Slot → `<split>/<basename>` ("" for a slot whose shard is gone).
    public let shards: [String]
    public let keyCount: Int
    public let dedupeCount: Int
    private let data: Data
    private let keysOffset: Int
    private let dedupeOffset: Int
    public let path: String

    /// Maps the file at `path`; throws `.corrupt` naming the file when it is not a key index. `location` is what
    /// messages call it when `path` is a local copy (a version's file in a store: `store.fileLocation`).
    public init(path: String, location: String? = nil) throws(DatasetError) {
        self.path = path
        let location = location ?? path
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw DatasetError(.corrupt, path: location, "cannot read the key index \(location): \(error.localizedDescription)")
        }
        self.data = data
        func corrupt(_ problem: String) -> DatasetError {
            DatasetError(.corrupt, path: location, "\(location) is not a valid key index (\(problem)); remove it and the next run rebuilds it")
        }
        var position = 0
        func take(_ count: Int) throws(DatasetError) -> Data {
            guard count >= 0, position + count <= data.count else { throw corrupt("it ends early") }
            defer { position += count }
            return data[data.startIndex + position ..< data.startIndex + position + count]
        }
        func u32() throws(DatasetError) -> Int { Int(try take(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
        func u64() throws(DatasetError) -> Int {
            let value = try take(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard value <= UInt64(Int.max) else { throw corrupt("a count is out of range") }
            return Int(value)
        }
        guard Array(try take(Self.magic.count)) == Self.magic else { throw corrupt("wrong magic") }
        dedupeRule = String(decoding: try take(try u32()), as: UTF8.self)
        var shards: [String] = []
        for _ in 0..<(try u32()) { shards.append(String(decoding: try take(try u32()), as: UTF8.self)) }
        self.shards = shards
        keyCount = try u64()
        keysOffset = position
        _ = try take(keyCount * Self.keyEntrySize)
        dedupeCount = try u64()
        dedupeOffset = position
        _ = try take(dedupeCount * Self.dedupeEntrySize)
        guard position == data.count else { throw corrupt("it has bytes after the last entry") }
    }

    private func hash(at offset: Int) -> KeyHash {
        data.withUnsafeBytes { raw in
            KeyHash(high: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)),
                    low: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
        }
    }

    private func slot(at offset: Int) -> Int {
        data.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self))) }
    }

    public func key(at index: Int) -> (key: KeyHash, slot: Int) {
        let offset = keysOffset + index * Self.keyEntrySize
        return (hash(at: offset), slot(at: offset + 16))
    }

    public func dedupe(at index: Int) -> (value: KeyHash, key: KeyHash) {
        let offset = dedupeOffset + index * Self.dedupeEntrySize
        return (hash(at: offset), hash(at: offset + 16))
    }

    /// The first index in `0..<count` whose hash is not below `target` (entries sorted by hash).
    private static func lowerBound(_ count: Int, _ target: KeyHash, _ hashAt: (Int) -> KeyHash) -> Int {
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            if hashAt(middle) < target { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Every shard (`<split>/<basename>`) holding a sample with this key: usually one; several when a pipeline
    /// without a change column published the key twice.
    public func shards(holding key: KeyHash) -> [String] {
        var index = Self.lowerBound(keyCount, key) { self.key(at: $0).key }
        var found: [String] = []
        while index < keyCount, case let entry = self.key(at: index), entry.key == key {
            if entry.slot < shards.count, !shards[entry.slot].isEmpty { found.append(shards[entry.slot]) }
            index += 1
        }
        return found
    }

    public func shards(holding key: String) -> [String] { shards(holding: KeyHash.ofKey(key)) }

    /// Whether a sample other than the one with key `key` published this dedupe value.
    public func holdsValue(_ value: KeyHash, otherThan key: KeyHash) -> Bool {
        var index = Self.lowerBound(dedupeCount, value) { self.dedupe(at: $0).value }
        while index < dedupeCount, case let entry = dedupe(at: index), entry.value == value {
            if entry.key != key { return true }
            index += 1
        }
        return false
    }
}

/// A new key index from an old one (or none) and what changed: the parent's index with the run's replaced keys
/// removed, its rewritten shards renamed, and the run's new keys added — or a version's index after `etl forget`.
/// The old index is read straight from its mapping and merged with the (sorted) additions while writing, so memory
/// holds only the additions.
public struct KeyIndexUpdate: Sendable {
    public var dedupeRule: String
    /// The slots of the new index: the old index's, renamed or emptied, then new shards appended.
    public var shards: [String]
    /// Keys whose old entries (key and dedupe) are dropped.
    public var removedKeys: Set<KeyHash> = []
    public private(set) var addedKeys: [(key: KeyHash, slot: UInt32)] = []
    public private(set) var addedValues: [(value: KeyHash, key: KeyHash)] = []

    /// Starts from `base` (nil: an empty index).
    public init(base: KeyIndex?, dedupeRule: String) {
        self.dedupeRule = dedupeRule
        shards = base?.shards ?? []
    }

    /// The slot of a shard, appended when new.
    public mutating func slot(for shard: String) -> UInt32 {
        if let index = shards.lastIndex(of: shard) { return UInt32(index) }
        shards.append(shard)
        return UInt32(shards.count - 1)
    }

    /// Points every slot naming `old` at `new` ("" when the shard is gone).
    public mutating func rename(_ old: String, to new: String) {
        for index in shards.indices where shards[index] == old { shards[index] = new }
    }

    public mutating func add(key: KeyHash, shard: String, value: KeyHash?) {
        let slot = slot(for: shard)
        addedKeys.append((key, slot))
        if let value { addedValues.append((value, key)) }
    }

    /// Writes the merged index to `path` (a new file) and syncs it.
    public func write(base: KeyIndex?, to path: String) throws(DatasetError) {
        let keys = addedKeys.sorted { ($0.key, $0.slot) < ($1.key, $1.slot) }
        let values = addedValues.sorted { ($0.value, $0.key) < ($1.value, $1.key) }
        let inheritBase = base.map { $0.dedupeRule == dedupeRule } ?? false
        do throws(SystemError) {
            var file = try SystemFile.createExclusive(path, role: "key index")
            var buffer: [UInt8] = []
            buffer.reserveCapacity(1 << 20)
            func flushIfFull() throws(SystemError) {
                if buffer.count >= 1 << 20 {
                    try file.write(buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            // A first pass counts what is kept, so no entry of the base is held in memory.
            func countOf(_ sequence: some Sequence) -> Int { sequence.reduce(0) { count, _ in count + 1 } }
            func u32(_ value: Int) { withUnsafeBytes(of: UInt32(value).littleEndian) { buffer.append(contentsOf: $0) } }
            func u64(_ value: Int) { withUnsafeBytes(of: UInt64(value).littleEndian) { buffer.append(contentsOf: $0) } }
            func text(_ value: String) {
                u32(value.utf8.count)
                buffer.append(contentsOf: value.utf8)
            }
            buffer += KeyIndex.magic
            text(dedupeRule)
            u32(shards.count)
            for shard in shards { text(shard) }

            // Keys: the base's kept entries merged with the additions (both sorted).
            let baseKeys = base.map { base in (0..<base.keyCount).lazy.map { base.key(at: $0) }.filter { !removedKeys.contains($0.key) } }
            u64((baseKeys.map(countOf) ?? 0) + keys.count)
            var next = 0
            func emitKey(_ key: KeyHash, _ slot: Int) {
                key.append(to: &buffer)
                u32(slot)
            }
            if let baseKeys {
                for entry in baseKeys {
                    while next < keys.count, (keys[next].key, Int(keys[next].slot)) < (entry.key, entry.slot) {
                        emitKey(keys[next].key, Int(keys[next].slot)); next += 1
                    }
                    emitKey(entry.key, entry.slot)
                    try flushIfFull()
                }
            }
            while next < keys.count { emitKey(keys[next].key, Int(keys[next].slot)); next += 1; try flushIfFull() }

            // Dedupe values: the base's are inherited only when made with the same rule.
            let baseValues = inheritBase ? base.map { base in
                (0..<base.dedupeCount).lazy.map { base.dedupe(at: $0) }.filter { !removedKeys.contains($0.key) }
            } : nil
            u64((baseValues.map(countOf) ?? 0) + values.count)
            next = 0
            func emitValue(_ value: KeyHash, _ key: KeyHash) {
                value.append(to: &buffer)
                key.append(to: &buffer)
            }
            if let baseValues {
                for entry in baseValues {
                    while next < values.count, (values[next].value, values[next].key) < (entry.value, entry.key) {
                        emitValue(values[next].value, values[next].key); next += 1
                    }
                    emitValue(entry.value, entry.key)
                    try flushIfFull()
                }
            }
            while next < values.count { emitValue(values[next].value, values[next].key); next += 1; try flushIfFull() }
            try file.write(buffer)
            try file.sync()
            try file.close()
        } catch { throw DatasetError(error) }
    }
}
