import Dataset
import Foundation
import MDS
import Testing

/// keys.idx: the on-disk key → shard index and dedupe values, merged from a parent's and a run's, binary-searched.
@Suite struct KeyIndexTests {
    let directory: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyindex-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func write(_ update: KeyIndexUpdate, base: KeyIndex? = nil, name: String) throws -> KeyIndex {
        let path = "\(directory)/\(name)"
        try update.write(base: base, to: path)
        return try KeyIndex(path: path)
    }

    /// A bytea still in libpq's buffer reaches the sink as borrowed bytes; an index rebuilt from shards reads the same
    /// value back as owned bytes. Both must hash alike, or dedupe would miss the duplicate after a rebuild.
    @Test func borrowedBytesHashAsTheSameBytesOwned() {
        struct Borrowed: MDSBorrowedBytes {
            let bytes: [UInt8]
            var count: Int { bytes.count }
            func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try bytes.withUnsafeBytes(body) }
        }
        let payload = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        #expect(KeyHash.ofValue(.borrowedBytes(Borrowed(bytes: payload))) == KeyHash.ofValue(.bytes(payload)))
        #expect(KeyHash.ofValue(.borrowedBytes(Borrowed(bytes: payload))) != KeyHash.ofValue(.bytes(Array(payload.dropLast()))))
        // The tag keeps types apart: the text "A" and the byte 0x41 are different values.
        #expect(KeyHash.ofValue(.string("A")) != KeyHash.ofValue(.bytes([0x41])))
    }

    @Test func looksUpEveryKeyAndValueOfAThousandSamples() throws {
        var update = KeyIndexUpdate(base: nil, dedupeRule: "column:label")
        for key in 0..<1000 {
            update.add(key: .ofKey("k\(key)"), shard: "train/shard.\(key / 100)", value: .ofValue(.string("label-\(key % 10)")))
        }
        let index = try write(update, name: "a.idx")
        #expect(index.keyCount == 1000 && index.dedupeCount == 1000 && index.dedupeRule == "column:label")
        for key in stride(from: 0, to: 1000, by: 37) {
            #expect(index.shards(holding: "k\(key)") == ["train/shard.\(key / 100)"])
        }
        #expect(index.shards(holding: "k1000").isEmpty && index.shards(holding: "").isEmpty)
        // A value held by another sample is a duplicate; held only by the same key it is not (a relabelled row).
        #expect(index.holdsValue(.ofValue(.string("label-3")), otherThan: .ofKey("k3")))
        #expect(!index.holdsValue(.ofValue(.string("label-99")), otherThan: .ofKey("k3")))
        // Sorted on disk, so binary search is valid.
        let hashes = (0..<index.keyCount).map { index.key(at: $0).key }
        #expect(hashes == hashes.sorted())
        // 20 bytes a key, 32 a dedupe value, plus the header.
        let size = try FileManager.default.attributesOfItem(atPath: index.path)[.size] as! Int
        #expect(size < 1000 * 52 + 400)
    }

    @Test func aValueOnlyItsOwnKeyPublishedIsNotADuplicate() throws {
        var update = KeyIndexUpdate(base: nil, dedupeRule: "column:media")
        update.add(key: .ofKey("7"), shard: "train/a", value: .ofValue(.bytes([1, 2, 3])))
        let index = try write(update, name: "own.idx")
        #expect(!index.holdsValue(.ofValue(.bytes([1, 2, 3])), otherThan: .ofKey("7")))
        #expect(index.holdsValue(.ofValue(.bytes([1, 2, 3])), otherThan: .ofKey("8")))
        // Values of different types with the same bytes are different values.
        #expect(KeyHash.ofValue(.string("1")) != KeyHash.ofValue(.int(1)) && KeyHash.ofKey("1") != KeyHash.ofValue(.string("1")))
    }

    @Test func aChildMergesTheParentWithReplacedKeysRemovedAndShardsRenamed() throws {
        var first = KeyIndexUpdate(base: nil, dedupeRule: "column:c")
        for key in 0..<50 { first.add(key: .ofKey("\(key)"), shard: key < 25 ? "train/old-a" : "test/old-b", value: .ofValue(.int(Int64(key)))) }
        let parent = try write(first, name: "v1.idx")

        var second = KeyIndexUpdate(base: parent, dedupeRule: "column:c")
        second.rename("train/old-a", to: "train/new-a")
        second.removedKeys = [.ofKey("3")]
        second.add(key: .ofKey("3"), shard: "train/run-2", value: .ofValue(.int(1003)))
        for key in 50..<60 { second.add(key: .ofKey("\(key)"), shard: "train/run-2", value: .ofValue(.int(Int64(key)))) }
        let child = try write(second, base: parent, name: "v2.idx")

        #expect(child.keyCount == 60 && child.dedupeCount == 60)
        #expect(child.shards(holding: "3") == ["train/run-2"])
        #expect(child.shards(holding: "4") == ["train/new-a"])
        #expect(child.shards(holding: "30") == ["test/old-b"])
        #expect(child.shards(holding: "55") == ["train/run-2"])
        // The replaced sample's old value is gone with it; its new one is there.
        #expect(!child.holdsValue(.ofValue(.int(3)), otherThan: .ofKey("x")))
        #expect(child.holdsValue(.ofValue(.int(1003)), otherThan: .ofKey("x")))
        #expect((0..<child.keyCount).map { child.key(at: $0).key } == (0..<child.keyCount).map { child.key(at: $0).key }.sorted())
        // The parent's file is untouched.
        #expect(try KeyIndex(path: parent.path).shards(holding: "3") == ["train/old-a"])
    }

    @Test func anotherDedupeRuleDoesNotInheritTheParentsValues() throws {
        var first = KeyIndexUpdate(base: nil, dedupeRule: "column:a")
        first.add(key: .ofKey("1"), shard: "train/x", value: .ofValue(.string("v")))
        let parent = try write(first, name: "rule-a.idx")
        let child = try write(KeyIndexUpdate(base: parent, dedupeRule: "column:b"), base: parent, name: "rule-b.idx")
        #expect(child.keyCount == 1 && child.dedupeCount == 0 && child.dedupeRule == "column:b")
    }

    @Test func aKeyPublishedTwiceIsFoundInBothShards() throws {
        var update = KeyIndexUpdate(base: nil, dedupeRule: "")
        update.add(key: .ofKey("9"), shard: "train/a", value: nil)
        update.add(key: .ofKey("9"), shard: "val/b", value: nil)
        let index = try write(update, name: "twice.idx")
        #expect(Set(index.shards(holding: "9")) == ["train/a", "val/b"])
    }

    @Test func aDamagedFileIsRefusedNamingIt() throws {
        var update = KeyIndexUpdate(base: nil, dedupeRule: "")
        update.add(key: .ofKey("1"), shard: "train/a", value: nil)
        let index = try write(update, name: "whole.idx")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: index.path))
        bytes.removeLast(3)
        let damaged = "\(directory)/damaged.idx"
        try bytes.write(to: URL(fileURLWithPath: damaged))
        let error = #expect(throws: DatasetError.self) { try KeyIndex(path: damaged) }
        #expect(error?.code == .corrupt && error?.message.contains(damaged) == true)
    }
}
