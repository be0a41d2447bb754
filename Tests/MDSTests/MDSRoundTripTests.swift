import Foundation
import MDS
import Testing

/// Every encoding, written and read back, with the edge values each one has.
@Suite struct MDSRoundTripTests {
    static let columns: [MDSColumn] = [
        MDSColumn(name: "bytes", encoding: .bytes),
        MDSColumn(name: "str", encoding: .str),
        MDSColumn(name: "int", encoding: .int),
        MDSColumn(name: "int8", encoding: .int8),
        MDSColumn(name: "int16", encoding: .int16),
        MDSColumn(name: "int32", encoding: .int32),
        MDSColumn(name: "int64", encoding: .int64),
        MDSColumn(name: "uint8", encoding: .uint8),
        MDSColumn(name: "uint16", encoding: .uint16),
        MDSColumn(name: "uint32", encoding: .uint32),
        MDSColumn(name: "uint64", encoding: .uint64),
        MDSColumn(name: "float16", encoding: .float16),
        MDSColumn(name: "float32", encoding: .float32),
        MDSColumn(name: "float64", encoding: .float64),
        MDSColumn(name: "json", encoding: .json),
        MDSColumn(name: "jpeg", encoding: .jpeg),
        MDSColumn(name: "png", encoding: .png),
        MDSColumn(name: "nd_any", encoding: .ndarray()),
        MDSColumn(name: "nd_uint8", encoding: .ndarray(dtype: .uint8)),
        MDSColumn(name: "nd_vec", encoding: .ndarray(dtype: .float32, shape: [4])),
        MDSColumn(name: "nd_grid", encoding: .ndarray(dtype: .int16, shape: [2, 3])),
        MDSColumn(name: "ünï ☃", encoding: .str),
    ]

    static func ndarray(_ dtype: NDType, _ shape: [Int], seed: Int = 0) -> NDArray {
        let count = shape.reduce(1, *)
        return NDArray(dtype: dtype, shape: shape, data: (0..<count * dtype.byteWidth).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ seed) })
    }

    /// Edge values first, then ordinary ones; every value is exactly representable in its encoding, so what
    /// comes back must be equal.
    static func samples() -> [[String: MDSValue]] {
        let edges: [[String: MDSValue]] = [
            [
                "bytes": .bytes([]), "str": .string(""), "int": .int(.min), "int8": .int(-128), "int16": .int(-32768),
                "int32": .int(Int64(Int32.min)), "int64": .int(.min), "uint8": .int(0), "uint16": .int(0),
                "uint32": .int(0), "uint64": .uint(0), "float16": .float(.nan), "float32": .float(.nan),
                "float64": .float(.nan), "json": .json("{}"), "jpeg": .bytes([]), "png": .bytes([]),
                "nd_any": .ndarray(NDArray(dtype: .float64, shape: [0], data: [])),
                "nd_uint8": .ndarray(NDArray(dtype: .uint8, shape: [2, 0, 3], data: [])),
                "nd_vec": .ndarray(NDArray(float32: [.nan, .infinity, -.infinity, -0.0], shape: [4])),
                "nd_grid": .ndarray(NDArray(int16: [.min, -1, 0, 1, 2, .max], shape: [2, 3])),
                "ünï ☃": .string("ünïcode ☃ 😀 \"quoted\" back\\slash\n\t\u{0}"),
            ],
            [
                "bytes": .bytes(Array(0...255)), "str": .string("😀"), "int": .int(.max), "int8": .int(127),
                "int16": .int(32767), "int32": .int(Int64(Int32.max)), "int64": .int(.max), "uint8": .int(255),
                "uint16": .int(65535), "uint32": .int(Int64(UInt32.max)), "uint64": .uint(.max),
                "float16": .float(65504), "float32": .float(Double(Float.greatestFiniteMagnitude)),
                "float64": .float(.greatestFiniteMagnitude),
                "json": .json(#"[1, -2.5e3, "ü\u00e9", null, true, false, {"a": {"b": []}}]"#),
                "jpeg": .bytes([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]), "png": .bytes([0x89, 0x50, 0x4e, 0x47]),
                "nd_any": .ndarray(ndarray(.float16, [3, 2])),
                "nd_uint8": .ndarray(ndarray(.uint8, [70_000])),  // largest dimension needs a u32 shape
                "nd_vec": .ndarray(NDArray(float32: [0, 1, -1, .leastNonzeroMagnitude], shape: [4])),
                "nd_grid": .ndarray(ndarray(.int16, [2, 3])),
                "ünï ☃": .string(""),
            ],
            [
                "bytes": .bytes([0]), "str": .string("a"), "int": .int(0), "int8": .int(0), "int16": .int(0),
                "int32": .int(0), "int64": .int(0), "uint8": .int(1), "uint16": .int(1), "uint32": .int(1),
                "uint64": .uint(1), "float16": .float(-.infinity), "float32": .float(.infinity),
                "float64": .float(-.infinity), "json": .json("\"just a string\""), "jpeg": .bytes([1]),
                "png": .bytes([2]),
                "nd_any": .ndarray(ndarray(.int64, [2, 3, 4])),
                "nd_uint8": .ndarray(ndarray(.uint8, [300, 1])),  // largest dimension needs a u16 shape
                "nd_vec": .ndarray(NDArray(float32: [1, 2, 3, 4], shape: [4])),
                "nd_grid": .ndarray(ndarray(.int16, [2, 3], seed: 1)),
                "ünï ☃": .string("x"),
            ],
            [
                "bytes": .bytes([1, 2]), "str": .string("b"), "int": .int(-1), "int8": .int(-1), "int16": .int(-1),
                "int32": .int(-1), "int64": .int(-1), "uint8": .int(2), "uint16": .int(2), "uint32": .int(2),
                "uint64": .uint(UInt64(Int64.max) + 1), "float16": .float(0x1p-24),  // smallest subnormal
                "float32": .float(Double(Float.leastNonzeroMagnitude)), "float64": .float(.leastNonzeroMagnitude),
                "json": .json("null"), "jpeg": .bytes([3]), "png": .bytes([4]),
                "nd_any": .ndarray(ndarray(.uint64, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])),
                "nd_uint8": .ndarray(ndarray(.uint8, [1])),
                "nd_vec": .ndarray(ndarray(.float32, [4])),
                "nd_grid": .ndarray(ndarray(.int16, [2, 3], seed: 2)),
                "ünï ☃": .string("y"),
            ],
        ]
        let ordinary = (0..<40).map(ordinarySample)
        return edges + ordinary
    }

    static func ordinarySample(_ index: Int) -> [String: MDSValue] {
        let i = Int64(index)
        let dtype = NDType.allCases[index % NDType.allCases.count]
        var sample: [String: MDSValue] = [:]
        sample["bytes"] = .bytes(Array(repeating: UInt8(index), count: index * 7))
        sample["str"] = .string("sample \(index)")
        sample["int"] = .int(i * 1_000_000_007)
        sample["int8"] = .int(i - 20)
        sample["int16"] = .int(i * 300)
        sample["int32"] = .int(i * -70_000)
        sample["int64"] = .int(i << 40)
        sample["uint8"] = .int(i)
        sample["uint16"] = .int(i * 1000)
        sample["uint32"] = .int(i * 100_000_000)
        sample["uint64"] = .uint(UInt64(index) << 58 | 1)
        sample["float16"] = .float(Double(index) * 0.25)
        sample["float32"] = .float(Double(Float(index) / 3))
        sample["float64"] = .float(Double(index) / 7)
        sample["json"] = .json(#"{"i": \#(index), "tags": ["a"]}"#)
        sample["jpeg"] = .bytes([0xff, 0xd8, UInt8(index)])
        sample["png"] = .bytes([0x89, UInt8(index)])
        sample["nd_any"] = .ndarray(ndarray(dtype, [index % 3 + 1, 5], seed: index))
        sample["nd_uint8"] = .ndarray(ndarray(.uint8, [index + 1, 3], seed: index))
        sample["nd_vec"] = .ndarray(NDArray(float32: [Float(index), 0.5, -0.25, 1e-3], shape: [4]))
        sample["nd_grid"] = .ndarray(ndarray(.int16, [2, 3], seed: index))
        sample["ünï ☃"] = .string(String(repeating: "☃", count: index))
        return sample
    }

    @Test(arguments: [3, nil] as [Int?])
    func everyEncodingRoundTrips(zstdLevel: Int?) throws {
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let samples = Self.samples()
        let options = MDSWriterOptions(sizeLimit: 8192, zstdLevel: zstdLevel, hashes: [.xxh64, .sha256])
        let writer = try MDSWriter(directory: output, columns: Self.columns.reversed(), options: options)
        for sample in samples { try writer.write(sample) }
        let entries = try writer.finish()
        #expect(entries.count > 2, "the size limit should have cut several shards")
        #expect(entries.reduce(0) { $0 + $1.samples } == samples.count)
        #expect(entries.allSatisfy { $0.hashes == ["sha256", "xxh64"] })
        #expect(entries[0].columnNames == Self.columns.map(\.name).sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) { $0.value < $1.value } })
        try MDSIndex(shards: entries).write(to: output)

        let reader = try MDSReader(directory: output)
        var decoded: [[String: MDSValue]] = []
        try reader.forEachSample(verifyHashes: true) { decoded.append($0) }
        #expect(decoded.count == samples.count)
        for (index, (got, want)) in zip(decoded, samples).enumerated() {
            for column in Self.columns where got[column.name] != want[column.name] {
                Issue.record("sample \(index) column \(column.name): got \(String(describing: got[column.name])), wrote \(String(describing: want[column.name]))")
            }
        }
    }

    @Test func decodedKindsAreCanonical() throws {
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let columns: [MDSColumn] = [
            MDSColumn(name: "i8", encoding: .int8), MDSColumn(name: "u32", encoding: .uint32),
            MDSColumn(name: "u64", encoding: .uint64), MDSColumn(name: "f16", encoding: .float16),
            MDSColumn(name: "f32", encoding: .float32), MDSColumn(name: "i64", encoding: .int64),
        ]
        let writer = try MDSWriter(directory: output, columns: columns, options: MDSWriterOptions())
        // .uint is accepted by signed and smaller columns when it fits; .int by uint64 when non-negative.
        try writer.write(["i8": .uint(5), "u32": .uint(7), "u64": .int(9), "f16": .float(0.1), "f32": .float(0.1), "i64": .uint(11)])
        try MDSIndex(shards: try writer.finish()).write(to: output)
        var decoded: [[String: MDSValue]] = []
        try MDSReader(directory: output).forEachSample { decoded.append($0) }
        #expect(decoded == [[
            "i8": .int(5), "u32": .int(7), "u64": .uint(9),
            "f16": .float(0.0999755859375),  // float16 0x2e66, as NumPy rounds 0.1
            "f32": .float(Double(Float(0.1))), "i64": .int(11),
        ]])
    }

    /// mosaicml closes a shard before the sample that would push it past size_limit; a bigger sample gets a
    /// shard of its own (we skip the empty shard mosaicml writes when that sample comes first).
    @Test func sampleLargerThanSizeLimitGetsItsOwnShard() throws {
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let columns = [MDSColumn(name: "blob", encoding: .bytes)]
        let writer = try MDSWriter(
            directory: output, columns: columns, options: MDSWriterOptions(sizeLimit: 1000, zstdLevel: 3))
        let small: [String: MDSValue] = ["blob": .bytes(Array(repeating: 1, count: 100))]
        let big: [String: MDSValue] = ["blob": .bytes(Array(repeating: 2, count: 5000))]
        for sample in [big, small, small, big, small] { try writer.write(sample) }
        let entries = try writer.finish()
        #expect(entries.map(\.samples) == [1, 2, 1, 1])
        #expect(entries.map(\.rawData.basename) == ["shard.00000.mds", "shard.00001.mds", "shard.00002.mds", "shard.00003.mds"])
        #expect(entries[0].rawData.bytes > 5000)
        #expect(entries[1].rawData.bytes <= 1000)
        for entry in entries {
            let file = try MDSFixtures.bytes(output.appendingPathComponent(entry.zipData!.basename))
            #expect(Zstd.frameContentSize(of: file) == UInt64(entry.rawData.bytes))
        }
        try MDSIndex(shards: entries).write(to: output)
        var blobs: [Int] = []
        try MDSReader(directory: output).forEachSample(verifyHashes: true) { sample in
            if case .bytes(let bytes) = sample["blob"] { blobs.append(bytes.count) }
        }
        #expect(blobs == [5000, 100, 100, 5000, 100])
    }

    @Test func shardNumberingStartsAtFirstShardIndex() throws {
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let writer = try MDSWriter(
            directory: output, columns: [MDSColumn(name: "k", encoding: .int64)],
            options: MDSWriterOptions(zstdLevel: nil), firstShardIndex: 123_456)
        try writer.write(["k": .int(1)])
        let entries = try writer.finish()
        #expect(entries.map(\.rawData.basename) == ["shard.123456.mds"])
        #expect(entries[0].zipData == nil && entries[0].compression == nil)
        #expect(try MDSFixtures.listing(output) == ["shard.123456.mds"])
    }

    @Test func emptyWriterWritesNothing() throws {
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let writer = try MDSWriter(directory: output, columns: [MDSColumn(name: "k", encoding: .int64)], options: MDSWriterOptions())
        #expect(try writer.finish().isEmpty)
        #expect(try MDSFixtures.listing(output).isEmpty)
    }
}
