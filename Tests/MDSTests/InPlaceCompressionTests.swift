import Foundation
import MDS
import SystemIO
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Shards are compressed in place: the raw shard is one address range (the header in memory right in front of the
/// mapped spool file), which zstd reads without copying, while pages it is done with are given back.
@Suite struct InPlaceCompressionTests {
    private func temporaryFile(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mapping-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The prefix and the file meet exactly at every length around a page, and giving pages back changes nothing read.
    @Test func thePrefixAndTheFileAreOneRange() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        for length in [0, 1, page - 1, page, page + 1, 3 * page + 17] {
            for prefixLength in [0, 1, 12, page - 1, page, page + 5] {
                let content = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
                let path = try temporaryFile(content)
                defer { try? FileManager.default.removeItem(atPath: path) }
                let file = try SystemFile.openForReading(path, role: "test file")
                var mapping = try PrefixedFileMapping(descriptor: file.descriptor, path: path, length: length, prefixLength: prefixLength)
                let prefix = (0..<prefixLength).map { UInt8(truncatingIfNeeded: 200 &+ $0) }
                prefix.withUnsafeBytes { mapping.prefix.copyMemory(from: $0) }
                #expect(Array(mapping.bytes) == prefix + content, "length \(length), prefix \(prefixLength)")
                mapping.release(below: prefixLength + length)
                #expect(Array(mapping.bytes) == prefix + content, "after release: length \(length), prefix \(prefixLength)")
            }
        }
    }

    /// Fed a megabyte at a time with the pages behind given back, the frame is the one zstd makes of the whole raw shard
    /// at once, and it decompresses to the raw shard.
    @Test(arguments: [1, 3, 12])
    func aShardIsTheFrameOfItsRawBytes(level: Int) throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("inplace-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: output) }
        let writer = try MDSWriter(directory: output, columns: [MDSColumn(name: "n", encoding: .int64), MDSColumn(name: "text", encoding: .str)],
                                   options: MDSWriterOptions(sizeLimit: 24 << 20, zstdLevel: level))
        var generator = SystemRandomNumberGenerator()
        for n in 0..<60_000 {
            // Half repetitive, half random: compressible, with matches reaching back across megabytes.
            let text = n % 2 == 0 ? String(repeating: "sample \(n % 1000) ", count: 20)
                : String((0..<300).map { _ in Character(UnicodeScalar(UInt8.random(in: 97...122, using: &generator))) })
            try writer.write(orderedValues: [.int(Int64(n)), .string(text)])
        }
        let entries = try writer.finish()
        #expect(entries.count >= 1 && entries[0].rawData.bytes > 9 << 20, "a shard larger than what stays mapped in")
        for entry in entries {
            let stored = [UInt8](try Data(contentsOf: output.appendingPathComponent(entry.storedFile.basename)))
            let raw = try Zstd.decompress(stored)
            #expect(raw.count == entry.rawData.bytes)
            #expect(try Zstd.compress(raw, level: level) == stored)
        }
    }
}
