import Foundation
@testable import MDS
import Testing

/// Bytes held elsewhere, as a database driver's buffer would be.
private struct HeldBytes: MDSBorrowedBytes {
    let storage: [UInt8]
    var count: Int { storage.count }
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try storage.withUnsafeBytes(body) }
}

/// A bytes value of a MiB or more goes from its own memory straight to the spool file instead of through the sample
/// buffer; the shard must hold exactly the bytes the buffered encoding gives.
@Suite struct MDSWriterLargeValueTests {
    private static let columns = [
        MDSColumn(name: "a", encoding: .bytes), MDSColumn(name: "b", encoding: .str), MDSColumn(name: "c", encoding: .jpeg),
        MDSColumn(name: "d", encoding: .int64), MDSColumn(name: "e", encoding: .bytes),
    ]

    private func directory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("mds-large-\(UUID().uuidString)", isDirectory: true)
    }

    private static func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) }
    }

    /// Samples mixing values above and below the direct-write threshold, in every bytes column.
    private static func samples(borrowed: Bool) -> [[MDSValue]] {
        let large = MDSWriter.chunkSize
        let sizes: [(Int, Int, Int)] = [(10, 20, 30), (large, 5, large + 7), (0, 3 * large, 1), (large - 1, large, 2 * large + 3)]
        return sizes.enumerated().map { index, size in
            func bytes(_ count: Int, _ seed: Int) -> MDSValue {
                let array = pattern(count, seed: seed + index)
                return borrowed ? .borrowedBytes(HeldBytes(storage: array)) : .bytes(array)
            }
            return [bytes(size.0, 1), .string("sample \(index)"), bytes(size.1, 2), .int(Int64(index)), bytes(size.2, 3)]
        }
    }

    @Test(arguments: [false, true])
    func largeValuesAreWrittenAsTheBufferedEncodingWouldBe(borrowed: Bool) throws {
        let output = directory()
        defer { try? FileManager.default.removeItem(at: output) }
        let writer = try MDSWriter(directory: output, columns: Self.columns,
                                   options: MDSWriterOptions(sizeLimit: 1 << 30, zstdLevel: nil, hashes: [.sha256]))
        let samples = Self.samples(borrowed: borrowed)
        for sample in samples { try writer.write(orderedValues: sample) }
        let entries = try writer.finish()
        #expect(entries.count == 1)

        // The raw shard: u32 count, u32 offsets, config JSON, samples. Each sample's bytes must equal the buffered
        // encoding (no value deferred) of the same values.
        let shard = try Data(contentsOf: output.appendingPathComponent(entries[0].rawData.basename))
        let bytes = [UInt8](shard)
        func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        #expect(u32(0) == samples.count)
        let codec = MDSSampleCodec(sortedColumns: Self.columns)
        for (index, sample) in samples.enumerated() {
            var expected: [UInt8] = []
            try codec.encode(ordered: sample, into: &expected)
            let (start, end) = (u32(4 + 4 * index), u32(8 + 4 * index))
            #expect(end - start == expected.count, "sample \(index) size")
            #expect(bytes[start..<end].elementsEqual(expected), "sample \(index) bytes")
        }
        #expect(u32(4 + 4 * samples.count) == bytes.count)

        try MDSIndex(shards: entries, version: 2).write(to: output)
        var read: [[String: MDSValue]] = []
        try MDSReader(directory: output).forEachSample(verifyHashes: true) { read.append($0) }
        #expect(read.count == samples.count)
        for (sample, decoded) in zip(samples, read) {
            #expect(Self.columns.indices.allSatisfy { decoded[Self.columns[$0].name] == sample[$0] })
        }
    }

    @Test func borrowedAndOwnedBytesMakeTheSameShards() throws {
        let (a, b) = (directory(), directory())
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let options = MDSWriterOptions(sizeLimit: 3 << 20, zstdLevel: 3, hashes: [.sha256, .xxh64])
        let owned = try MDSWriter(directory: a, columns: Self.columns, options: options)
        let borrowed = try MDSWriter(directory: b, columns: Self.columns, options: options)
        for sample in Self.samples(borrowed: false) { try owned.write(orderedValues: sample) }
        for sample in Self.samples(borrowed: true) { try borrowed.write(orderedValues: sample) }
        let (x, y) = (try owned.finish(), try borrowed.finish())
        #expect(x.count > 1, "the size limit splits the samples into several shards")
        #expect(x.map(\.storedFile.hashes) == y.map(\.storedFile.hashes))
        #expect(x.map(\.rawData.bytes) == y.map(\.rawData.bytes))
    }

    @Test func deferredEncodingLeavesLargeValuesOutAtTheirOffsets() throws {
        let codec = MDSSampleCodec(sortedColumns: Self.columns)
        let sample = Self.samples(borrowed: true)[3]
        var whole: [UInt8] = []
        try codec.encode(ordered: sample, into: &whole)
        var parts: [UInt8] = []
        var deferred: [MDSSampleCodec.DeferredValue] = []
        try codec.encode(ordered: sample, into: &parts, deferring: &deferred, atLeast: MDSWriter.chunkSize)
        #expect(deferred.map(\.index) == [2, 4], "c (1 MiB) and e (2 MiB + 3) are left out, a (1 MiB - 1) is not")
        var rebuilt: [UInt8] = []
        var from = 0
        for item in deferred {
            rebuilt += parts[from..<item.offset]
            guard case .borrowedBytes(let value) = sample[item.index] else { continue }
            rebuilt += value.array
            from = item.offset
        }
        rebuilt += parts[from...]
        #expect(rebuilt.count == whole.count && rebuilt == whole)
    }

    @Test func aBorrowedValueInANonBytesColumnIsATypeMismatch() throws {
        let output = directory()
        defer { try? FileManager.default.removeItem(at: output) }
        let writer = try MDSWriter(directory: output, columns: [MDSColumn(name: "s", encoding: .str)])
        #expect { try writer.write(orderedValues: [.borrowedBytes(HeldBytes(storage: [1]))]) } throws: { error in
            (error as? ShardError)?.code == .typeMismatch
        }
        try writer.write(orderedValues: [.string("still open")])
        #expect(try writer.finish().count == 1)
    }
}
