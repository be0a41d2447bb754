import Foundation
import MDS
import Testing

/// Shards are finalized two at a time in the background; entries, numbering and samples must still come back in
/// the order they were written, and the ordered-values API must write the same bytes as the dictionary API.
@Suite struct MDSWriterOrderTests {
    private static let columns = [MDSColumn(name: "n", encoding: .int64), MDSColumn(name: "text", encoding: .str)]

    private func directory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("mds-order-\(UUID().uuidString)", isDirectory: true)
    }

    @Test(arguments: [3, nil] as [Int?])
    func manyShardsComeBackInOrder(zstdLevel: Int?) throws {
        let output = directory()
        defer { try? FileManager.default.removeItem(at: output) }
        let writer = try MDSWriter(directory: output, columns: Self.columns,
                                   options: MDSWriterOptions(sizeLimit: 4096, zstdLevel: zstdLevel), firstShardIndex: 7)
        for n in 0..<3000 {
            try writer.write(orderedValues: [.int(Int64(n)), .string("sample \(n) " + String(repeating: "x", count: n % 50))])
        }
        let entries = try writer.finish()
        #expect(entries.count > 20)
        let suffix = zstdLevel == nil ? "" : ".zstd"
        #expect(entries.map(\.storedFile.basename) == (7..<(7 + entries.count)).map { "shard." + String(format: "%05d", $0) + ".mds" + suffix })
        try MDSIndex(shards: entries, version: 2).write(to: output)
        var seen: [Int64] = []
        try MDSReader(directory: output).forEachSample(verifyHashes: true) { sample in
            if case .int(let n) = sample["n"] { seen.append(n) }
        }
        #expect(seen == (0..<3000).map(Int64.init))
    }

    @Test func orderedValuesWriteTheSameBytesAsADictionary() throws {
        let (a, b) = (directory(), directory())
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let byName = try MDSWriter(directory: a, columns: Self.columns, options: MDSWriterOptions(sizeLimit: 2048))
        let ordered = try MDSWriter(directory: b, columns: Self.columns.reversed(), options: MDSWriterOptions(sizeLimit: 2048))
        #expect(ordered.columns.map(\.name) == ["n", "text"], "the writer's column order is code point order")
        for n in 0..<500 {
            try byName.write(["text": .string("t\(n)"), "n": .int(Int64(n))])
            try ordered.write(orderedValues: [.int(Int64(n)), .string("t\(n)")])
        }
        let (x, y) = (try byName.finish(), try ordered.finish())
        #expect(x.map(\.storedFile.hashes) == y.map(\.storedFile.hashes))
        #expect(throws: ShardError.self) {
            let third = try MDSWriter(directory: a.appendingPathComponent("c"), columns: Self.columns)
            try third.write(orderedValues: [.int(1)])
        }
    }
}
