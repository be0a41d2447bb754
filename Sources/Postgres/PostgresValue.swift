/// One decoded column value.
///
/// Infinite timestamps and dates keep PostgreSQL's own convention: `Int64.max` / `Int64.min` microseconds
/// (``PostgresValue/infinity`` / ``PostgresValue/negativeInfinity``) and `Int32.max` / `Int32.min` days stand for
/// 'infinity' and '-infinity', and ``textForParameter`` turns them back into those words. Numeric NaN and
/// ±Infinity are the strings "NaN", "Infinity" and "-Infinity", as the server prints them.
public enum PostgresValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int16(Int16), int32(Int32), int64(Int64)
    case float32(Float), float64(Double)
    /// Exact decimal text with the column's scale, e.g. "-12.3400"; or "NaN", "Infinity", "-Infinity".
    case numeric(String)
    /// text, varchar, bpchar (blank-padded as stored), name, and citext when that extension is installed.
    case text(String)
    /// The bytes in place where possible (see ``PostgresBytes``: a binary COPY's values are slices of libpq's buffer).
    case bytea(PostgresBytes)
    /// timestamptz, and also timestamp without time zone, whose wall-clock value is taken to be UTC.
    case timestamptz(microsecondsSinceUnixEpoch: Int64)
    case date(daysSinceUnixEpoch: Int32)
    /// json as stored (whitespace and key order kept); jsonb as the server normalizes it.
    case json(String)
    /// Lowercase canonical form, e.g. "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".
    case uuid(String)
    /// One-dimensional text[] / varchar[] / bpchar[] / name[]; NULL elements are nil.
    case textArray([String?])
    /// One-dimensional int2[] / int4[] / int8[], widened; NULL elements are nil.
    case int64Array([Int64?])

    /// 'infinity' as microseconds in ``timestamptz(microsecondsSinceUnixEpoch:)``.
    public static let infinity = Int64.max
    /// '-infinity' as microseconds in ``timestamptz(microsecondsSinceUnixEpoch:)``.
    public static let negativeInfinity = Int64.min
}

extension PostgresValue {
    /// Text the server parses back into exactly this value when it is bound as a parameter of the column's type,
    /// e.g. "2026-11-23 19:40:00.123456+00" for a timestamptz; nil for NULL.
    ///
    /// The incremental cursor stores this text and binds it again on the next run, so it must be lossless:
    /// floats use the shortest representation that reads back to the same bits, timestamps keep every
    /// microsecond, arrays are quoted element by element.
    public var textForParameter: String? {
        switch self {
        case .null: return nil
        case .bool(let value): return value ? "true" : "false"
        case .int16(let value): return String(value)
        case .int32(let value): return String(value)
        case .int64(let value): return String(value)
        case .float32(let value): return Self.floatText(value.isNaN, value.isInfinite, value < 0, value.description)
        case .float64(let value): return Self.floatText(value.isNaN, value.isInfinite, value < 0, value.description)
        case .numeric(let text), .text(let text), .json(let text), .uuid(let text): return text
        case .bytea(let bytes): return "\\x" + Self.hex(bytes)
        case .timestamptz(let microseconds): return CalendarText.postgres(microsecondsSinceUnixEpoch: microseconds)
        case .date(let days): return CalendarText.postgres(daysSinceUnixEpoch: days)
        case .textArray(let elements):
            let items = elements.map { element -> String in
                guard let element else { return "NULL" }
                // Quoting every element keeps empty strings, the word NULL, braces, commas and spaces as data.
                let escaped = element.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"")
                return "\"" + escaped + "\""
            }
            return "{" + items.joined(separator: ",") + "}"
        case .int64Array(let elements):
            return "{" + elements.map { $0.map(String.init) ?? "NULL" }.joined(separator: ",") + "}"
        }
    }

    private static func floatText(_ isNaN: Bool, _ isInfinite: Bool, _ isNegative: Bool, _ shortest: String) -> String {
        // Swift prints "nan" / "inf", which the server does not accept.
        if isNaN { return "NaN" }
        if isInfinite { return isNegative ? "-Infinity" : "Infinity" }
        return shortest
    }

    private static func hex(_ bytes: PostgresBytes) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
