/// The one place where timestamps and dates become text, in the two forms etl writes:
/// - `postgres`: what the server parses back into exactly the same value (the incremental cursor is stored in this
///   form and bound again on the next run), e.g. "2026-11-23 19:40:00.123456+00", "0044-03-15 BC";
/// - `iso8601`: what a `str` output column holds, e.g. "2026-11-23T19:40:00.123456Z", always with six fraction
///   digits so that the text sorts like the instant.
///
/// PostgreSQL's 'infinity' and '-infinity' (``PostgresValue/infinity`` / ``PostgresValue/negativeInfinity`` microseconds,
/// `Int32.max` / `Int32.min` days) are the words "infinity" and "-infinity" in both forms, never a date in year
/// 294247. Built from integer arithmetic and ASCII bytes, without Foundation's formatters: a `str` timestamp column
/// converts one value per row.
public enum CalendarText {
    public static func postgres(microsecondsSinceUnixEpoch microseconds: Int64) -> String {
        if let word = infinityWord(microseconds) { return word }
        let parts = TimestampParts(microseconds)
        var text = ASCIIText(capacity: 36)
        text.date(parts.year, parts.month, parts.day, bcYears: true)
        text.byte(" ")
        text.time(parts.secondOfDay)
        if parts.fraction != 0 {
            text.byte(".")
            text.digits(parts.fraction, width: 6)
        }
        text.bytes("+00")
        if parts.year <= 0 { text.bytes(" BC") }
        return text.string
    }

    public static func postgres(daysSinceUnixEpoch days: Int32) -> String {
        if let word = infinityWord(days) { return word }
        let (year, month, day) = CivilDate.fromDaysSinceUnixEpoch(Int64(days))
        var text = ASCIIText(capacity: 16)
        text.date(year, month, day, bcYears: true)
        if year <= 0 { text.bytes(" BC") }
        return text.string
    }

    /// ISO 8601 in UTC with microseconds. Years before 1 are astronomical (0 = 1 BC) with a minus sign, as ISO
    /// 8601's expanded form has it.
    public static func iso8601(microsecondsSinceUnixEpoch microseconds: Int64) -> String {
        if let word = infinityWord(microseconds) { return word }
        let parts = TimestampParts(microseconds)
        var text = ASCIIText(capacity: 32)
        text.date(parts.year, parts.month, parts.day, bcYears: false)
        text.byte("T")
        text.time(parts.secondOfDay)
        text.byte(".")
        text.digits(parts.fraction, width: 6)
        text.byte("Z")
        return text.string
    }

    public static func iso8601(daysSinceUnixEpoch days: Int32) -> String {
        if let word = infinityWord(days) { return word }
        let (year, month, day) = CivilDate.fromDaysSinceUnixEpoch(Int64(days))
        var text = ASCIIText(capacity: 16)
        text.date(year, month, day, bcYears: false)
        return text.string
    }

    public static func infinityWord(_ microseconds: Int64) -> String? {
        microseconds == PostgresValue.infinity ? "infinity" : microseconds == PostgresValue.negativeInfinity ? "-infinity" : nil
    }

    public static func infinityWord(_ days: Int32) -> String? {
        days == Int32.max ? "infinity" : days == Int32.min ? "-infinity" : nil
    }
}

private struct TimestampParts {
    var year: Int64, month: Int64, day: Int64, secondOfDay: Int64, fraction: Int64

    init(_ microseconds: Int64) {
        let perDay: Int64 = 86_400_000_000
        let days = microseconds.floorDivided(by: perDay)
        let inDay = microseconds - days * perDay
        (year, month, day) = CivilDate.fromDaysSinceUnixEpoch(days)
        secondOfDay = inDay / 1_000_000
        fraction = inDay % 1_000_000
    }
}

/// Appends ASCII into one preallocated buffer: one allocation per formatted value.
private struct ASCIIText {
    private var buffer: [UInt8] = []

    init(capacity: Int) { buffer.reserveCapacity(capacity) }

    var string: String { String(decoding: buffer, as: UTF8.self) }

    mutating func byte(_ character: Unicode.Scalar) { buffer.append(UInt8(ascii: character)) }
    mutating func bytes(_ text: StaticString) {
        text.withUTF8Buffer { buffer.append(contentsOf: $0) }
    }

    /// `value` (≥ 0) in decimal, zero-padded to at least `width` digits.
    mutating func digits(_ value: Int64, width: Int) {
        var scratch: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                      UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = UInt64(value.magnitude)
        withUnsafeMutableBytes(of: &scratch) { out in
            repeat {
                out[19 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            while count < width {
                out[19 - count] = UInt8(ascii: "0")
                count += 1
            }
            buffer.append(contentsOf: out[(20 - count)...])
        }
    }

    /// PostgreSQL has no year 0: with `bcYears`, astronomical year 0 is "0001" (+ " BC" by the caller), -1 is 2 BC;
    /// without, years ≤ 0 are written astronomically with a minus sign.
    mutating func date(_ year: Int64, _ month: Int64, _ day: Int64, bcYears: Bool) {
        if bcYears {
            digits(year <= 0 ? 1 - year : year, width: 4)
        } else {
            // As C's %04d did before: the sign counts towards the width.
            if year < 0 { byte("-") }
            digits(year < 0 ? -year : year, width: year < 0 ? 3 : 4)
        }
        byte("-")
        digits(month, width: 2)
        byte("-")
        digits(day, width: 2)
    }

    mutating func time(_ secondOfDay: Int64) {
        digits(secondOfDay / 3600, width: 2)
        byte(":")
        digits(secondOfDay / 60 % 60, width: 2)
        byte(":")
        digits(secondOfDay % 60, width: 2)
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
