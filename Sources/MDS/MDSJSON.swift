/// A JSON value serialized exactly like Python's `json.dumps(obj, sort_keys=True)` with default settings:
/// `", "` and `": "` separators, keys sorted by code point, everything outside printable ASCII escaped as
/// lowercase `\uXXXX` (UTF-16 surrogate pairs above the BMP). mosaicml writes the shard header config and
/// index.json this way, and byte-identical shards depend on it.
enum PythonJSON: Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    case array([PythonJSON])
    case object([String: PythonJSON])

    var bytes: [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }

    func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): out.append(contentsOf: String(value).utf8)
        case .string(let value): Self.writeString(value, to: &out)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(contentsOf: ", ".utf8) }
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, key) in members.keys.sorted(by: String.codePointPrecedes).enumerated() {
                if index > 0 { out.append(contentsOf: ", ".utf8) }
                Self.writeString(key, to: &out)
                out.append(contentsOf: ": ".utf8)
                members[key]!.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func writeString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for unit in text.utf16 {
            switch unit {
            case 0x22: out.append(contentsOf: "\\\"".utf8)
            case 0x5c: out.append(contentsOf: "\\\\".utf8)
            case 0x0a: out.append(contentsOf: "\\n".utf8)
            case 0x0d: out.append(contentsOf: "\\r".utf8)
            case 0x09: out.append(contentsOf: "\\t".utf8)
            case 0x08: out.append(contentsOf: "\\b".utf8)
            case 0x0c: out.append(contentsOf: "\\f".utf8)
            case 0x20...0x7e: out.append(UInt8(unit))
            default:
                out.append(contentsOf: "\\u".utf8)
                for shift in stride(from: 12, through: 0, by: -4) {
                    out.append(hexDigits[Int((unit >> UInt16(shift)) & 0xf)])
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// The JSON check every path shares (value conversion, defaults, label maps, and the writer itself), so a text
/// accepted upstream is never refused at write time, nor the other way round.
public enum MDSJSON {
    /// Why `text` is not valid RFC 8259 JSON (with the byte offset), or nil when it is.
    public static func syntaxProblem(in text: String) -> String? { JSONSyntaxChecker.problem(in: text) }
}

/// A strict RFC 8259 syntax check for `json` column values, without building any objects (values are checked
/// once per sample, on the hot path). Python's reader would also accept NaN/Infinity and a few other
/// extensions; we refuse them so the stored text is portable JSON.
struct JSONSyntaxChecker {
    private let bytes: [UInt8]
    private var position = 0
    private var depth = 0

    /// The reason the text is not valid JSON, or nil when it is.
    static func problem(in text: String) -> String? {
        var checker = JSONSyntaxChecker(bytes: Array(text.utf8))
        return checker.check()
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private mutating func check() -> String? {
        do throws(Failure) {
            skipSpace()
            try value()
            skipSpace()
            if position != bytes.count { throw Failure(reason: "unexpected text after the JSON value", at: position) }
            return nil
        } catch {
            return "\(error.reason) at byte \(error.at)"
        }
    }

    private struct Failure: Error {
        var reason: String
        var at: Int
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipSpace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0a || byte == 0x0d { position += 1 }
    }

    private mutating func expect(_ literal: String) throws(Failure) {
        for byte in literal.utf8 {
            guard current == byte else { throw Failure(reason: "invalid literal, expected \(literal)", at: position) }
            position += 1
        }
    }

    private mutating func value() throws(Failure) {
        guard let byte = current else { throw Failure(reason: "unexpected end of text", at: position) }
        switch byte {
        case UInt8(ascii: "{"): try container(close: UInt8(ascii: "}"), isObject: true)
        case UInt8(ascii: "["): try container(close: UInt8(ascii: "]"), isObject: false)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"): try expect("true")
        case UInt8(ascii: "f"): try expect("false")
        case UInt8(ascii: "n"): try expect("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        default: throw Failure(reason: "unexpected character", at: position)
        }
    }

    private mutating func container(close: UInt8, isObject: Bool) throws(Failure) {
        depth += 1
        // Deeply nested input must not be able to exhaust anything; real data never nests this far.
        if depth > 512 { throw Failure(reason: "nesting deeper than 512 levels", at: position) }
        position += 1
        skipSpace()
        if current == close {
            position += 1
            depth -= 1
            return
        }
        while true {
            skipSpace()
            if isObject {
                guard current == UInt8(ascii: "\"") else { throw Failure(reason: "expected a string key", at: position) }
                try string()
                skipSpace()
                guard current == UInt8(ascii: ":") else { throw Failure(reason: "expected ':'", at: position) }
                position += 1
                skipSpace()
            }
            try value()
            skipSpace()
            if current == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard current == close else { throw Failure(reason: "expected ',' or closing bracket", at: position) }
            position += 1
            depth -= 1
            return
        }
    }

    private mutating func string() throws(Failure) {
        position += 1
        while let byte = current {
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return
            case UInt8(ascii: "\\"):
                position += 1
                guard let escaped = current else { break }
                if escaped == UInt8(ascii: "u") {
                    for _ in 0..<4 {
                        position += 1
                        guard let hex = current, hex.isHexDigit else {
                            throw Failure(reason: "invalid \\u escape", at: position)
                        }
                    }
                } else if !Array("\"\\/bfnrt".utf8).contains(escaped) {
                    throw Failure(reason: "invalid escape", at: position)
                }
                position += 1
            case 0..<0x20:
                throw Failure(reason: "unescaped control character in string", at: position)
            default:
                position += 1
            }
        }
        throw Failure(reason: "unterminated string", at: position)
    }

    private mutating func number() throws(Failure) {
        if current == UInt8(ascii: "-") { position += 1 }
        if current == UInt8(ascii: "0") {
            position += 1
        } else {
            guard digits() > 0 else { throw Failure(reason: "invalid number", at: position) }
        }
        if current == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw Failure(reason: "invalid number fraction", at: position) }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw Failure(reason: "invalid number exponent", at: position) }
        }
    }

    private mutating func digits() -> Int {
        let start = position
        while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1 }
        return position - start
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}
