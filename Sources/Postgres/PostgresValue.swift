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
    case bytea([UInt8])
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
        case .timestamptz(let microseconds): return Self.timestampText(microseconds)
        case .date(let days): return Self.dateText(days)
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

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func timestampText(_ microseconds: Int64) -> String {
        if microseconds == infinity { return "infinity" }
        if microseconds == negativeInfinity { return "-infinity" }
        let perDay: Int64 = 86_400_000_000
        let days = microseconds.floorDivided(by: perDay)
        let inDay = microseconds - days * perDay
        let (year, month, day) = CivilDate.fromDaysSinceUnixEpoch(days)
        let seconds = inDay / 1_000_000
        let fraction = inDay % 1_000_000
        var text = yearText(year) + "-" + pad(month, 2) + "-" + pad(day, 2) + " "
            + pad(seconds / 3600, 2) + ":" + pad(seconds / 60 % 60, 2) + ":" + pad(seconds % 60, 2)
        if fraction != 0 { text += "." + pad(fraction, 6) }
        text += "+00"
        if year <= 0 { text += " BC" }
        return text
    }

    static func dateText(_ days: Int32) -> String {
        if days == Int32.max { return "infinity" }
        if days == Int32.min { return "-infinity" }
        let (year, month, day) = CivilDate.fromDaysSinceUnixEpoch(Int64(days))
        return yearText(year) + "-" + pad(month, 2) + "-" + pad(day, 2) + (year <= 0 ? " BC" : "")
    }

    /// PostgreSQL has no year 0: astronomical year 0 is 1 BC, -1 is 2 BC, and so on.
    private static func yearText(_ year: Int64) -> String {
        pad(year <= 0 ? 1 - year : year, 4)
    }

    private static func pad<T: BinaryInteger>(_ value: T, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

extension Int64 {
    func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

/// Proleptic Gregorian calendar arithmetic (PostgreSQL uses it for all dates, including those before 1582).
enum CivilDate {
    private static let daysPer400Years: Int64 = 146_097
    /// Days from 0000-03-01 to 1970-01-01. Counting from March puts the leap day at the end of the cycle.
    private static let marchZeroToUnixEpoch: Int64 = 719_468

    static func fromDaysSinceUnixEpoch(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + marchZeroToUnixEpoch
        let cycle = shifted.floorDivided(by: daysPer400Years)
        let dayOfCycle = shifted - cycle * daysPer400Years  // 0...146096
        // Years into the cycle, correcting for the leap days of the 4-, 100- and 400-year rules.
        let yearOfCycle = (dayOfCycle - dayOfCycle / 1460 + dayOfCycle / 36524 - dayOfCycle / 146_096) / 365
        let dayOfYear = dayOfCycle - (365 * yearOfCycle + yearOfCycle / 4 - yearOfCycle / 100)  // from March 1st
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        let year = yearOfCycle + cycle * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    static func daysSinceUnixEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let marchYear = month <= 2 ? year - 1 : year
        let cycle = marchYear.floorDivided(by: 400)
        let yearOfCycle = marchYear - cycle * 400
        let monthFromMarch = (month + 9) % 12
        let dayOfYear = (153 * monthFromMarch + 2) / 5 + day - 1
        let dayOfCycle = yearOfCycle * 365 + yearOfCycle / 4 - yearOfCycle / 100 + dayOfYear
        return cycle * daysPer400Years + dayOfCycle - marchZeroToUnixEpoch
    }
}
