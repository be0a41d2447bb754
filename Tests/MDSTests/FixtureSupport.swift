import Foundation
import MDS
import Testing

/// The mosaicml-streaming 0.13.0 test vectors (see Fixtures/mds/README.md) and the samples they were written from.
enum MDSFixtures {
    static var root: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("mds")
    }
    static var zstdDirectory: URL { root.appendingPathComponent("zstd") }
    static var rawDirectory: URL { root.appendingPathComponent("raw") }

    struct Expected {
        var columns: [MDSColumn]
        var samples: [[String: MDSValue]]
    }

    /// expected.json turned into our values, each according to its column's encoding.
    static func expected() throws -> Expected {
        let data = try Data(contentsOf: root.appendingPathComponent("expected.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let columnNames = try #require(object["columns"] as? [String: String])
        let columns = try columnNames.map { name, encoding in try MDSColumn(name: name, encodingName: encoding) }
        let rawSamples = try #require(object["samples"] as? [[String: Any]])
        let samples = try rawSamples.map { raw in
            var sample: [String: MDSValue] = [:]
            for column in columns {
                sample[column.name] = try value(try #require(raw[column.name]), encoding: column.encoding)
            }
            return sample
        }
        return Expected(columns: columns, samples: samples)
    }

    static func value(_ json: Any, encoding: MDSEncoding) throws -> MDSValue {
        switch encoding {
        case .bytes, .jpeg, .png:
            let object = try #require(json as? [String: String])
            let base64 = try #require(object["base64"])
            return .bytes(Array(try #require(Data(base64Encoded: base64))))
        case .str:
            return .string(try #require(json as? String))
        case .json:
            return .json(pythonDumps(json))
        case .int, .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32:
            return .int(try #require(json as? NSNumber).int64Value)
        case .uint64:
            return .uint(try #require(json as? NSNumber).uint64Value)
        case .float16, .float32, .float64:
            return .float(try #require(json as? NSNumber).doubleValue)
        case .ndarray:
            let object = try #require(json as? [String: Any])
            let dtypeName = try #require(object["dtype"] as? String)
            let dtype = try #require(NDType(rawValue: dtypeName))
            let shape = try #require(object["shape"] as? [Int])
            let values = try #require(object["values"] as? [NSNumber])
            var data: [UInt8] = []
            for number in values {
                switch dtype {
                case .uint8: data.append(number.uint8Value)
                case .int16: withUnsafeBytes(of: number.int16Value.littleEndian) { data.append(contentsOf: $0) }
                case .float32:
                    withUnsafeBytes(of: Float(number.doubleValue).bitPattern.littleEndian) { data.append(contentsOf: $0) }
                default: Issue.record("expected.json uses dtype \(dtype), which this loader does not convert")
                }
            }
            return .ndarray(NDArray(dtype: dtype, shape: shape, data: data))
        }
    }

    /// Python's `json.dumps(obj)` for the JSON in expected.json (ints, strings, lists, dicts whose keys were
    /// inserted in sorted order, which holds for the fixture's `meta`).
    static func pythonDumps(_ json: Any) -> String {
        switch json {
        case let dictionary as [String: Any]:
            let members = dictionary.keys.sorted().map { "\(pythonDumps($0)): \(pythonDumps(dictionary[$0]!))" }
            return "{" + members.joined(separator: ", ") + "}"
        case let array as [Any]:
            return "[" + array.map(pythonDumps).joined(separator: ", ") + "]"
        case let string as String:
            var out = "\""
            for unit in string.utf16 {
                switch unit {
                case 0x22: out += "\\\""
                case 0x5c: out += "\\\\"
                case 0x20...0x7e: out += String(UnicodeScalar(UInt8(unit)))
                default: out += "\\u" + String(format: "%04x", unit)
                }
            }
            return out + "\""
        case let number as NSNumber:
            return number.stringValue
        default:
            return "null"
        }
    }

    /// A fresh empty directory under the system's temporary directory.
    static func scratchDirectory(_ name: String = #function) throws -> URL {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("shards-tests-\(safe)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func bytes(_ url: URL) throws -> [UInt8] {
        Array(try Data(contentsOf: url))
    }

    static func listing(_ url: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
    }
}

/// Compares byte strings and, on mismatch, reports the first differing offset instead of dumping both arrays.
func expectSameBytes(
    _ actual: [UInt8], _ expected: [UInt8], _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    guard actual != expected else { return }
    let common = min(actual.count, expected.count)
    let firstDifference = (0..<common).first { actual[$0] != expected[$0] } ?? common
    Issue.record(
        "\(what): \(actual.count) bytes vs expected \(expected.count), first difference at offset \(firstDifference)",
        sourceLocation: sourceLocation)
}
