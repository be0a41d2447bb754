import Foundation
@testable import MDS
import Media
@testable import Pipeline
@testable import Postgres
import Testing

private let context = TransformContext(mediaRoot: nil, limits: .init())
private let emptyRow = PostgresRow(columns: [], values: [])

/// A value of each source type that fits every encoding allowed for that type.
private func sample(of type: SourceType) -> PostgresValue {
    switch type {
    case .bool: .bool(true)
    case .int16: .int16(7)
    case .int32: .int32(100)
    case .int64: .int64(127)
    case .float32: .float32(1.5)
    case .float64: .float64(-2.25)
    case .numeric: .numeric("12")
    case .text: .text("{\"a\": [1, \"é\"]}")
    case .bytea: .bytea([0xFF, 0xD8, 0x00])
    case .timestamp: .timestamptz(microsecondsSinceUnixEpoch: 1_500_000)
    case .date: .date(daysSinceUnixEpoch: 11_016)
    case .json: .json("{\"k\": null}")
    case .uuid: .uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    case .textArray: .textArray(["a", nil, "q\"uote"])
    case .intArray: .int64Array([1, 2, 100])
    }
}

@Suite struct ValueConversionTests {
    static let allTypes: [SourceType] = [.bool, .int16, .int32, .int64, .float32, .float64, .numeric, .text, .bytea,
                                         .timestamp, .date, .json, .uuid, .textArray, .intArray]

    /// Every source type in every encoding it allows: the conversion succeeds, and the shard writer accepts what
    /// it produced for that encoding (what the plan accepts never fails at write time).
    @Test(arguments: allTypes) func everyAllowedEncodingConvertsAndEncodes(_ type: SourceType) throws {
        let allowed = ValueTransform.allowedEncodings(for: type)
        #expect(allowed.contains(ValueTransform.defaultEncoding(for: type)))
        for encoding in allowed {
            let value = try convert(sample(of: type), to: encoding)
            var buffer: [UInt8] = []
            try MDSSampleCodec.encode(value, as: encoding, column: "c", into: &buffer)
            if let fixed = encoding.fixedSize { #expect(buffer.count == fixed, "\(type) as \(encoding)") }
        }
    }

    @Test func representativeConversionsAreExact() throws {
        #expect(try convert(.bool(false), to: .str) == .string("false"))
        #expect(try convert(.bool(true), to: .uint8) == .int(1))
        #expect(try convert(.int16(-7), to: .float32) == .float(-7))
        #expect(try convert(.float64(0.1), to: .str) == .string("0.1"))
        #expect(try convert(.numeric("-12.500"), to: .str) == .string("-12.500"))
        #expect(try convert(.numeric("12.000"), to: .int64) == .int(12))
        #expect(try convert(.numeric("2.5"), to: .float64) == .float(2.5))
        #expect(try convert(.text("7"), to: .bytes) == .bytes([0x37]))
        #expect(try convert(.timestamptz(microsecondsSinceUnixEpoch: -1), to: .int64) == .int(-1))
        #expect(try convert(.timestamptz(microsecondsSinceUnixEpoch: -1), to: .str) == .string("1969-12-31T23:59:59.999999Z"))
        #expect(try convert(.timestamptz(microsecondsSinceUnixEpoch: 1_500_000), to: .float64) == .float(1.5))
        #expect(try convert(.date(daysSinceUnixEpoch: 11_016), to: .str) == .string("2000-02-29"))
        #expect(try convert(.date(daysSinceUnixEpoch: -1), to: .int32) == .int(-1))
        #expect(try convert(.textArray(["a", nil]), to: .json) == .json("[\"a\",null]"))
        #expect(try convert(.int64Array([1, nil]), to: .json) == .json("[1,null]"))
        #expect(try convert(.int64Array([1, 300]), to: .ndarray(dtype: .int16)) == .ndarray(NDArray(int16: [1, 300], shape: [2])))
        #expect(try convert(.json("{\"a\":1}"), to: .str) == .string("{\"a\":1}"))
    }

    /// Every integer encoding takes exactly its range, from every path: a source integer, text, and the same check
    /// the writer makes (`MDSEncoding.holds`).
    @Test func integerRangesAreCheckedAtBothEnds() throws {
        let ranges: [(MDSEncoding, Int64, Int64)] = [
            (.int8, -128, 127), (.int16, -32768, 32767), (.int32, Int64(Int32.min), Int64(Int32.max)),
            (.uint8, 0, 255), (.uint16, 0, 65535), (.uint32, 0, Int64(UInt32.max)), (.int64, .min, .max), (.int, .min, .max),
        ]
        for (encoding, low, high) in ranges {
            #expect(try convert(.int64(low), to: encoding) == .int(low))
            #expect(try convert(.int64(high), to: encoding) == .int(high))
            #expect(try convertText(String(high), to: encoding) == .int(high))
            if low > .min {
                #expect(throws: SampleRejection(reason: .valueOutOfRange, message: "\(low - 1) does not fit \(encoding.name)")) {
                    try convert(.int64(low - 1), to: encoding)
                }
                #expect(!encoding.holds(low - 1))
            }
            if high < .max {
                #expect(throws: SampleRejection(reason: .valueOutOfRange, message: "\(high + 1) does not fit \(encoding.name)")) {
                    try convertText(String(high + 1), to: encoding)
                }
                #expect(!encoding.holds(high + 1))
            }
        }
        #expect(try convert(.int64(.max), to: .uint64) == .uint(UInt64(Int64.max)))
        #expect(try convertText("18446744073709551615", to: .uint64) == .uint(.max))
        #expect(MDSEncoding.uint64.holds(UInt64.max) && !MDSEncoding.uint32.holds(UInt64(UInt32.max) + 1))
        #expect(throws: SampleRejection.self) { try convert(.int64(-1), to: .uint64) }
        #expect(throws: SampleRejection.self) { try convert(.int64Array([1, 300]), to: .ndarray(dtype: .uint8)) }
        #expect((try? convert(.numeric("1e30"), to: .int64)) == nil)
        #expect((try? convertText("12.5", to: .int32)) == nil)
        #expect(!MDSEncoding.str.holds(Int64(0)) && !MDSEncoding.float64.isInteger && MDSEncoding.int.isInteger)
    }

    @Test func nullsTakeTheDefaultOrQuarantine() throws {
        let withDefault = ValueTransform(encoding: .int32, defaultText: "-1")
        #expect(try withDefault.value(.null, sourceType: .int32, row: emptyRow, name: "n", context: context) == .int(-1))
        #expect(try withDefault.value(.int32(5), sourceType: .int32, row: emptyRow, name: "n", context: context) == .int(5))
        let noDefault = ValueTransform(encoding: nil, defaultText: nil)
        #expect(throws: SampleRejection(reason: .nullValue, message: "column 'n' is NULL and has no default")) {
            try noDefault.value(.null, sourceType: .int32, row: emptyRow, name: "n", context: context)
        }
        #expect(try noDefault.value(.null, sourceType: .json, row: emptyRow, name: "j", context: context) == .json("null"))
        // A default that cannot be written is a pipeline error before any row, not a quarantine per row.
        guard case .failure(let problem) = ValueTransform(encoding: .uint8, defaultText: "300").outputColumns(name: "n", sourceType: .int32) else {
            Issue.record("a default of 300 for uint8 was accepted")
            return
        }
        #expect(problem.message.contains("does not fit encoding uint8"))
        guard case .failure(let wrongType) = ValueTransform(encoding: .png, defaultText: nil).outputColumns(name: "n", sourceType: .text) else {
            Issue.record("png was accepted for a text column")
            return
        }
        #expect(wrongType.message == "encoding 'png' cannot hold a text column (use one of: str, json, bytes)")
    }

    /// PostgreSQL's 'infinity' and '-infinity' keep PostgreSQL's own representation in integer encodings, are ±inf in
    /// float64, and the words in str: never a date in year 294247.
    @Test func infinityIsKeptAsInfinityInEveryEncoding() throws {
        let infinity = PostgresValue.timestamptz(microsecondsSinceUnixEpoch: PostgresValue.infinity)
        let negative = PostgresValue.timestamptz(microsecondsSinceUnixEpoch: PostgresValue.negativeInfinity)
        #expect(try convert(infinity, to: .str) == .string("infinity"))
        #expect(try convert(negative, to: .str) == .string("-infinity"))
        #expect(try convert(infinity, to: .int64) == .int(.max))
        #expect(try convert(negative, to: .int) == .int(.min))
        #expect(try convert(infinity, to: .float64) == .float(.infinity))
        #expect(try convert(negative, to: .float64) == .float(-.infinity))
        #expect(try convert(.date(daysSinceUnixEpoch: .max), to: .str) == .string("infinity"))
        #expect(try convert(.date(daysSinceUnixEpoch: .min), to: .str) == .string("-infinity"))
        #expect(try convert(.date(daysSinceUnixEpoch: .max), to: .int32) == .int(Int64(Int32.max)))
        #expect(try convert(.date(daysSinceUnixEpoch: .min), to: .int64) == .int(Int64(Int32.min)))
        // The cursor's text form is what the server parses back.
        #expect(infinity.textForParameter == "infinity" && negative.textForParameter == "-infinity")
    }

    @Test func calendarTextHasOneFormPerUse() {
        #expect(CalendarText.iso8601(microsecondsSinceUnixEpoch: 0) == "1970-01-01T00:00:00.000000Z")
        #expect(CalendarText.iso8601(microsecondsSinceUnixEpoch: 951_782_400_000_001) == "2000-02-29T00:00:00.000001Z")
        #expect(CalendarText.iso8601(microsecondsSinceUnixEpoch: Int64.max - 1) == "294247-01-10T04:00:54.775806Z")
        #expect(CalendarText.iso8601(daysSinceUnixEpoch: -1) == "1969-12-31")
        #expect(CalendarText.iso8601(daysSinceUnixEpoch: -719_529) == "-001-12-31", "astronomical year -1 is 2 BC")
        #expect(CalendarText.postgres(microsecondsSinceUnixEpoch: 1_000_001) == "1970-01-01 00:00:01.000001+00")
        #expect(CalendarText.postgres(microsecondsSinceUnixEpoch: 0) == "1970-01-01 00:00:00+00")
        #expect(CalendarText.postgres(daysSinceUnixEpoch: -719_529) == "0002-12-31 BC")
        #expect(CalendarText.postgres(daysSinceUnixEpoch: .max) == "infinity")
    }

    @Test func jsonHasOneCheckEverywhere() throws {
        #expect(throws: SampleRejection.self) { try convertText("{oops", to: .json) }
        do {
            _ = try convertText("[NaN]", to: .json)
            Issue.record("NaN is not JSON")
        } catch {
            #expect(error.reason == .invalidJSON && error.message.contains("at byte 1"))
        }
        #expect(try convertText(" {\"a\":1} ", to: .json) == .json(" {\"a\":1} "))
        #expect(MDSJSON.syntaxProblem(in: "[1, 2]") == nil && MDSJSON.syntaxProblem(in: "[1,]") != nil)
    }

    @Test func labelMapsConvertOnceAndQuarantineUnknownLabels() throws {
        let map = LabelMapTransform(values: ["good": "1", "bad": "0"], defaultText: nil, encoding: .int32)
        #expect(try map.value(.text("good"), sourceType: .text, row: emptyRow, name: "l", context: context) == .int(1))
        #expect(throws: SampleRejection(reason: .unmappedLabel, message: "label 'meh' of column 'l' is not in label_map.values")) {
            try map.value(.text("meh"), sourceType: .text, row: emptyRow, name: "l", context: context)
        }
        let numeric = LabelMapTransform(values: ["3": "three"], defaultText: "other", encoding: .str)
        #expect(try numeric.value(.int16(3), sourceType: .int16, row: emptyRow, name: "l", context: context) == .string("three"))
        #expect(try numeric.value(.null, sourceType: .int16, row: emptyRow, name: "l", context: context) == .string("other"))
        guard case .failure(let problem) = LabelMapTransform(values: ["a": "300"], defaultText: nil, encoding: .uint8).outputColumns(name: "l", sourceType: .text) else {
            Issue.record("a mapped value of 300 for uint8 was accepted")
            return
        }
        #expect(problem.message.hasPrefix("mapped value '300' does not fit encoding uint8"))
    }

    @Test func quarantineReasonsAreStableSnakeCaseCodes() {
        let codes = QuarantineReason.allCases.map(\.code)
        #expect(Set(codes).count == codes.count)
        #expect(codes.allSatisfy { $0.allSatisfy { $0.isLowercase || $0 == "_" } })
        for reason in [QuarantineReason.nullValue, .nullKey, .duplicateKey, .valueOutOfRange, .invalidValue, .invalidJSON,
                       .unmappedLabel, .invalidWindow, .sampleTooLarge] {
            #expect(!reason.code.hasPrefix("media_"))
        }
        // Media reasons are FFmpeg's classification in snake case, prefixed: the codes datasets already carry.
        for reason in MediaError.Reason.allCases {
            let snake = reason.rawValue.replacingOccurrences(of: "([a-z])([A-Z])", with: "$1_$2", options: .regularExpression).lowercased()
            #expect(QuarantineReason(media: reason).code == "media_" + snake)
        }
        #expect(QuarantineReason(sampleError: .valueOutOfRange) == .valueOutOfRange)
        #expect(QuarantineReason(sampleError: .typeMismatch) == .invalidValue)
        let entry = QuarantineEntry(key: "k", reason: .duplicateKey, message: "m", column: nil)
        #expect(entry.reason == "duplicate_key")
    }
}
