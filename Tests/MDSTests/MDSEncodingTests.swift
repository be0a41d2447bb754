import Foundation
import Testing

@testable import MDS

@Suite struct MDSEncodingTests {
    @Test(arguments: [
        ("bytes", nil), ("str", nil), ("int", 8), ("int8", 1), ("int16", 2), ("int32", 4), ("int64", 8),
        ("uint8", 1), ("uint16", 2), ("uint32", 4), ("uint64", 8), ("float16", 2), ("float32", 4), ("float64", 8),
        ("json", nil), ("jpeg", nil), ("png", nil), ("ndarray", nil), ("ndarray:uint8", nil),
        ("ndarray:float32:4", 16), ("ndarray:uint8:2,3", 6), ("ndarray:float16:2,3,5", 60),
    ] as [(String, Int?)])
    func namesParseAndRoundTrip(name: String, size: Int?) throws {
        let encoding = try MDSEncoding(parsing: name)
        #expect(encoding.name == name)
        #expect(encoding.fixedSize == size)
    }

    @Test func ndarrayNamesCarryDtypeAndShape() throws {
        #expect(try MDSEncoding(parsing: "ndarray:float32:4") == .ndarray(dtype: .float32, shape: [4]))
        #expect(try MDSEncoding(parsing: "ndarray:uint8:2,3") == .ndarray(dtype: .uint8, shape: [2, 3]))
        #expect(try MDSEncoding(parsing: "ndarray:int16") == .ndarray(dtype: .int16))
        #expect(try MDSEncoding(parsing: "ndarray") == .ndarray())
        // Python's int() accepts spaces and leading zeros; the name we write is the canonical one.
        #expect(try MDSEncoding(parsing: "ndarray:uint8: 2,03").name == "ndarray:uint8:2,3")
    }

    @Test(arguments: [
        "pkl", "pil", "str_int", "list[jpeg]", "jpeg_array", "", "Int", "ndarray:", "ndarray:foo", "ndarray:uint8:",
        "ndarray:uint8:0", "ndarray:uint8:2,-1", "ndarray:uint8:2:3", "ndarray:bool", "int:4",
    ])
    func badNamesAreRejected(name: String) throws {
        let error = try #require(throws: ShardError.self) { try MDSEncoding(parsing: name) }
        #expect(error.code == .invalidEncoding)
        #expect(error.description.contains("'\(name)'"))
    }

    /// Expected bits from NumPy 2.4: `np.array(v, np.float16).view(np.uint16)`.
    @Test(arguments: [
        (0.1, 0x2e66), (1.0 / 3.0, 0x3555), (-2.5, 0xc100), (65504.0, 0x7bff), (65519.99, 0x7bff),
        (1e-05, 0x00a8), (6.1e-05, 0x03ff), (5.960464477539063e-08, 0x0001), (2.9802322387695312e-08, 0x0000),
        (8.940696716308594e-08, 0x0002), (1.00048828125, 0x3c00), (1.00146484375, 0x3c02), (-1e-07, 0x8002),
        (3.14159, 0x4248), (1000.7, 0x63d1), (6.103515625e-05, 0x0400), (6.097555160522461e-05, 0x03ff),
        (0.0, 0x0000), (-0.0, 0x8000), (Double.infinity, 0x7c00), (-Double.infinity, 0xfc00), (Double.nan, 0x7e00),
        (1e-300, 0x0000),
    ] as [(Double, UInt16)])
    func float16MatchesNumPy(value: Double, bits: UInt16) {
        #expect(HalfFloat.bits(from: value) == bits)
    }

    @Test func float16OverflowIsRefusedAndDecodingIsExact() {
        #expect(HalfFloat.bits(from: 65520) == nil)
        #expect(HalfFloat.bits(from: 1e10) == nil)
        #expect(HalfFloat.bits(from: -70000) == nil)
        // Every binary16 value widens to a double that converts back to the same bits (NaNs included).
        let mismatches = (UInt16.min...UInt16.max).filter { HalfFloat.bits(from: HalfFloat.double(fromBits: $0)) != $0 }
        #expect(mismatches.isEmpty, "first: \(mismatches.prefix(5).map { String($0, radix: 16) })")
        #expect(HalfFloat.double(fromBits: 0x3c00) == 1)
        #expect(HalfFloat.double(fromBits: 0x0001) == 0x1p-24)
        #expect(HalfFloat.double(fromBits: 0x7bff) == 65504)
        #expect(HalfFloat.double(fromBits: 0xc100) == -2.5)
    }

    @Test func pythonJSONFormatting() {
        let value = PythonJSON.object([
            "b": .array([.int(1), .null, .bool(true)]), "a": .string("é\"\\\n\u{7f}😀/"), "B": .object([:]),
        ])
        #expect(String(decoding: value.bytes, as: UTF8.self)
            == #"{"B": {}, "a": "\u00e9\"\\\n\u007f\ud83d\ude00/", "b": [1, null, true]}"#)
    }

    @Test(arguments: [
        "{}", "[]", "0", "-0.5e+10", "\"x\"", "null", "true", " {\"a\" : [1, 2, {\"b\": null}]} ",
        "\"\\u00e9\\n\"", "1E5", "[\"ü\"]",
    ])
    func validJSONPasses(text: String) {
        #expect(JSONSyntaxChecker.problem(in: text) == nil)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\" 1}", "01", "1.", ".5", "NaN", "Infinity", "'x'", "\"\\x\"", "\"a\nb\"", "{} []",
        "[" + String(repeating: "[", count: 600) + String(repeating: "]", count: 601), "tru", "\"unterminated",
    ])
    func invalidJSONFails(text: String) {
        #expect(JSONSyntaxChecker.problem(in: text) != nil)
    }

    @Test func shardEntryCodableKeepsNulls() throws {
        let entry = try #require(try MDSIndex.read(from: MDSFixtures.rawDirectory).shards.first)
        let data = try JSONEncoder().encode(entry)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["zip_data"] is NSNull)
        #expect(object["compression"] is NSNull)
        #expect(try JSONDecoder().decode(MDSShardEntry.self, from: data) == entry)
    }
}

@Suite struct HashTests {
    /// Reference values of XXH64 with seed 0 (xxhash's own test vectors and python-xxhash's README).
    @Test(arguments: [
        ("", "ef46db3751d8e999"), ("a", "d24ec4f1a98c6e5b"), ("abc", "44bc2cf5ad770999"),
        ("Nobody inspects the spammish repetition", "fbcea83c8a378bf1"),
    ])
    func xxh64KnownVectors(text: String, hex: String) {
        var hasher = XXH64()
        hasher.update(Array(text.utf8))
        #expect(hasher.hexDigest() == hex)
    }

    @Test func xxh64StreamingEqualsOneShot() {
        var generator = SystemRandomNumberGenerator()
        let data = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let oneShot = XXH64.hash(data)
        for split in [0, 1, 5, 31, 32, 33, 63, 64, 100, 999, 1000] {
            var hasher = XXH64()
            hasher.update(Array(data[..<split]))
            // Feed the rest in uneven pieces to cross the 32-byte stripes at every offset.
            var position = split
            var step = 1
            while position < data.count {
                let end = min(data.count, position + step)
                hasher.update(Array(data[position..<end]))
                position = end
                step = step % 37 + 3
            }
            #expect(hasher.finalize() == oneShot, "split at \(split)")
        }
    }

    /// The fixture's index.json records mosaicml's sha256 and xxh64 of both the compressed files and their
    /// decompressed contents.
    @Test func fixtureHashesMatch() throws {
        let index = try MDSIndex.read(from: MDSFixtures.zstdDirectory)
        for shard in index.shards {
            let zip = try #require(shard.zipData)
            let compressed = try MDSFixtures.bytes(MDSFixtures.zstdDirectory.appendingPathComponent(zip.basename))
            #expect(HashAccumulator.hexDigests(of: compressed, [.sha256, .xxh64]) == zip.hashes)
            let raw = try Zstd.decompress(compressed)
            #expect(HashAccumulator.hexDigests(of: raw, [.sha256, .xxh64]) == shard.rawData.hashes)
        }
    }
}

@Suite struct ZstdTests {
    @Test func roundTripCarriesContentSize() throws {
        for size in [0, 1, 1000, 300_000] {
            let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 * 7 / 3) }
            let frame = try Zstd.compress(data, level: 3)
            #expect(Zstd.frameContentSize(of: frame) == UInt64(size))
            #expect(try Zstd.decompress(frame) == data)
        }
    }

    /// A valid frame without the content size (what a streaming compressor without a pledged size writes):
    /// mosaicml's reader refuses it, so ours does too.
    @Test func frameWithoutContentSizeIsRefused() throws {
        let payload = Array("hello".utf8)
        // Magic, frame header descriptor 0 (no content size, not single-segment), window descriptor,
        // then one raw last block: 3-byte header (size << 3 | last).
        let header = UInt32(payload.count) << 3 | 1
        let frame: [UInt8] = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00,
                              UInt8(header & 0xff), UInt8(header >> 8 & 0xff), UInt8(header >> 16 & 0xff)] + payload
        #expect(Zstd.frameContentSize(of: frame) == nil)
        let error = try #require(throws: ShardError.self) { try Zstd.decompress(frame, path: "/x/shard.00000.mds.zstd") }
        #expect(error.code == .compression)
        #expect(error.description.contains("/x/shard.00000.mds.zstd"))
        #expect(error.description.contains("content size"))
    }

    @Test func garbageIsRefused() throws {
        #expect(Zstd.frameContentSize(of: [1, 2, 3, 4, 5, 6, 7, 8, 9]) == nil)
        #expect(throws: ShardError.self) { try Zstd.decompress([1, 2, 3, 4, 5, 6, 7, 8, 9]) }
        var frame = try Zstd.compress(Array(repeating: 1, count: 100), level: 1)
        frame.append(0)
        #expect(throws: ShardError.self) { try Zstd.decompress(frame) }
    }
}
