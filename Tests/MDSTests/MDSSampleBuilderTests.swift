import Foundation
import MDS
import Testing

/// `MDSSampleBuilder` writes a sample column by column; the bytes must be the codec's for the same values, and a writer
/// given them must write the shards that encoding the values would have.
@Suite struct MDSSampleBuilderTests {
    private static let columns: [MDSColumn] = [
        MDSColumn(name: "text", encoding: .str), MDSColumn(name: "__key__", encoding: .str),
        MDSColumn(name: "n", encoding: .int64), MDSColumn(name: "small", encoding: .int16),
        MDSColumn(name: "f", encoding: .float32), MDSColumn(name: "blob", encoding: .bytes),
        MDSColumn(name: "doc", encoding: .json), MDSColumn(name: "Upper", encoding: .uint8),
    ]

    /// The values of sample `n` in the writer's (code point) order.
    private static func values(_ n: Int, order: [MDSColumn]) -> [MDSValue] {
        order.map { column in
            switch column.name {
            case "text": .string(n % 7 == 0 ? "" : "value \(n) é " + String(repeating: "x", count: n % 40))
            case "__key__": .string(String(n))
            case "n": .int(Int64(n) * 1_000_003 - 5_000_000)
            case "small": .int(Int64(n % 60_000) - 30_000)
            case "f": .float(Double(n) / 3)
            case "blob": .bytes((0..<(n % 13)).map { UInt8(($0 + n) % 256) })
            case "doc": .json("{\"n\": \(n)}")
            default: .int(Int64(n % 256))
            }
        }
    }

    private func directory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("mds-builder-\(UUID().uuidString)", isDirectory: true)
    }

    @Test func writesTheBytesTheCodecWrites() throws {
        let layout = MDSSampleBuilder.Layout(columns: Self.columns)
        #expect(layout.columns.map(\.name) == ["Upper", "__key__", "blob", "doc", "f", "n", "small", "text"])
        let (a, b) = (directory(), directory())
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let encoded = try MDSWriter(directory: a, columns: Self.columns, options: MDSWriterOptions(sizeLimit: 4096, zstdLevel: 3))
        let built = try MDSWriter(directory: b, columns: Self.columns, options: MDSWriterOptions(sizeLimit: 4096, zstdLevel: 3))
        var buffer: [UInt8] = [9, 9, 9]  // a sample starts at the end of whatever the buffer holds
        for n in 0..<2000 {
            let values = Self.values(n, order: layout.columns)
            try encoded.write(orderedValues: values)
            buffer.removeSubrange(3...)
            var sample = MDSSampleBuilder(layout, in: &buffer)
            for (column, value) in zip(layout.columns, values) {
                switch (column.name, value) {
                case ("__key__", .string(let text)): try sample.appendText(text, into: &buffer)
                case ("text", .string(let text)):
                    let utf8 = Array(text.utf8)
                    try utf8.withUnsafeBytes { try sample.appendBytes($0, into: &buffer) }
                case ("blob", .bytes(let bytes)):
                    try bytes.withUnsafeBytes { try sample.appendBytes($0, into: &buffer) }
                default: try sample.append(value, into: &buffer)
                }
            }
            sample.finish()
            let encodedSample = Array(buffer[3...])
            try encodedSample.withUnsafeBytes { try built.write(encodedSample: $0) }
        }
        let (left, right) = (try encoded.finish(), try built.finish())
        #expect(left.count > 10)
        #expect(left.map(\.storedFile.basename) == right.map(\.storedFile.basename))
        for entry in left {
            #expect(try Data(contentsOf: a.appendingPathComponent(entry.storedFile.basename))
                == Data(contentsOf: b.appendingPathComponent(entry.storedFile.basename)))
        }
    }

    @Test func refusesAValueItsColumnCannotHoldAsTheCodecDoes() throws {
        let layout = MDSSampleBuilder.Layout(columns: [MDSColumn(name: "a", encoding: .int16), MDSColumn(name: "b", encoding: .str)])
        var buffer: [UInt8] = []
        var sample = MDSSampleBuilder(layout, in: &buffer)
        let error = #expect(throws: ShardError.self) { try sample.append(.int(70_000), into: &buffer) }
        #expect(error?.isSampleError == true && error?.column == "a")
    }
}
