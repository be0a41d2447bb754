import Testing
@testable import Postgres

/// Malformed binary values must become errors, never crashes or reads past the buffer.
struct BinaryDecodingTests {
    private func decode(_ bytes: [UInt8], as format: ValueFormat) throws(PostgresError) -> PostgresValue {
        // A copy of exactly the given length, so an out-of-bounds read would be caught by the sanitizer or crash.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        return try PostgresValue.decode(UnsafeRawBufferPointer(buffer), as: format)
    }

    private func expectViolation(_ bytes: [UInt8], as format: ValueFormat, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: PostgresError.self, sourceLocation: sourceLocation) { try decode(bytes, as: format) }
        do {
            _ = try decode(bytes, as: format)
        } catch {
            #expect(error.kind == .protocolViolation, sourceLocation: sourceLocation)
        }
    }

    @Test func wrongLengthsAndValues() {
        expectViolation([], as: .bool)
        expectViolation([2], as: .bool)
        expectViolation([0, 1], as: .bool)
        expectViolation([0, 0, 1], as: .int32)
        expectViolation([0, 0, 0, 0, 1], as: .int32)
        expectViolation([0, 0, 0, 0, 0, 0, 0], as: .int64)
        expectViolation(Array(repeating: 0, count: 15), as: .uuid)
        expectViolation([0xC3, 0x28], as: .text)  // invalid UTF-8
        expectViolation([2, 123, 125], as: .jsonb)  // unknown jsonb version
        expectViolation([], as: .jsonb)
        expectViolation([0, 0, 0], as: .date)
    }

    @Test func malformedNumerics() {
        // ndigits, weight, sign, dscale, digits…
        expectViolation([0, 1, 0, 0, 0, 0, 0], as: .numeric)  // short header
        expectViolation([0, 2, 0, 0, 0, 0, 0, 0, 0, 1], as: .numeric)  // two digits promised, one present
        expectViolation([0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10], as: .numeric)  // digit 10000
        expectViolation([0, 1, 0, 0, 0x12, 0x34, 0, 0, 0, 1], as: .numeric)  // unknown sign
        expectViolation([0xFF, 0xFF, 0, 0, 0, 0, 0, 0], as: .numeric)  // negative ndigits
        expectViolation([0, 0, 0, 0, 0, 0, 0x40, 0], as: .numeric)  // dscale beyond 0x3FFF
        #expect((try? decode([0, 1, 0, 0, 0x40, 0, 0, 2, 0, 12], as: .numeric)) == .numeric("-12.00"))
        #expect((try? decode([0, 1, 0xFF, 0xFF, 0, 0, 0, 4, 0x04, 0xD2], as: .numeric)) == .numeric("0.1234"))
    }

    @Test func malformedArrays() {
        // ndim, flags, element oid, then per dimension (count, lower bound), then (length, bytes) per element.
        let textArray = ValueFormat.textArray(elementOID: 25)
        expectViolation(words(1, 0, 23, 0, 1), as: textArray)  // wrong element type
        expectViolation(words(1, 2, 25, 0, 1), as: textArray)  // bad flags
        expectViolation(words(-1, 0, 25), as: textArray)
        expectViolation(words(1, 0, 25, Int32.max, 1), as: textArray)  // count far beyond the bytes present
        expectViolation(words(1, 0, 25, 1, 1, 5) + [65], as: textArray)  // element longer than the buffer
        expectViolation(words(1, 0, 25, 1, 1, -2), as: textArray)  // negative length other than NULL
        expectViolation(words(1, 0, 23, 1, 1, 2) + [0, 1], as: .integerArray(elementOID: 23))  // 2-byte int4
        #expect((try? decode(words(0, 0, 25), as: textArray)) == .textArray([]))
        #expect((try? decode(words(1, 1, 25, 1, 1, -1), as: textArray)) == .textArray([nil]))
    }

    /// Random bytes for every format: each must decode or throw, and never trap.
    @Test func randomBytesNeverCrash() {
        let formats: [ValueFormat] = [
            .bool, .int16, .int32, .int64, .float32, .float64, .numeric, .text, .bytea, .timestamp, .date, .json,
            .jsonb, .uuid, .textArray(elementOID: 25), .integerArray(elementOID: 20), .integerArray(elementOID: 21),
        ]
        var generator = SystemRandomNumberGenerator()
        for format in formats {
            for _ in 0..<2000 {
                let length = Int.random(in: 0...40, using: &generator)
                var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                // Mostly plausible array headers, so the fuzzing reaches past the first checks.
                if case .textArray = format, bytes.count >= 12 { bytes.replaceSubrange(0..<12, with: [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25]) }
                if case .integerArray = format, bytes.count >= 12 { bytes.replaceSubrange(0..<12, with: [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 20]) }
                _ = try? decode(bytes, as: format)
            }
        }
    }

    @Test func civilCalendarRoundTrips() {
        for days in stride(from: Int64(-3_000_000), through: 3_000_000, by: 997) {
            let (year, month, day) = CivilDate.fromDaysSinceUnixEpoch(days)
            #expect((1...12).contains(month) && (1...31).contains(day))
            #expect(CivilDate.daysSinceUnixEpoch(year: year, month: month, day: day) == days)
        }
        #expect(CivilDate.fromDaysSinceUnixEpoch(0) == (1970, 1, 1))
        #expect(CivilDate.fromDaysSinceUnixEpoch(-1) == (1969, 12, 31))
        #expect(CivilDate.fromDaysSinceUnixEpoch(11_016) == (2000, 2, 29))
    }
}

/// Big-endian 32-bit words, the unit of array headers.
func words(_ values: Int32...) -> [UInt8] {
    var bytes: [UInt8] = []
    for value in values {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }
    return bytes
}
