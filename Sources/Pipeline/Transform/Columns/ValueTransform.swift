import Foundation
import Postgres
import MDS

/// A plain column: the source value converted to an MDS encoding (inferred from the PostgreSQL type when the
/// pipeline file does not name one). NULLs take the column's `default`, or send the row to quarantine.
struct ValueTransform: SingleValueTransform {
    static let key = "value"

    var encoding: MDSEncoding?
    var defaultText: String?

    static func parse(_ options: ConfigNode, column: String, issues: inout ConfigIssues) -> ValueTransform? {
        nil  // read from the column entry itself; see PipelineConfig+Loading
    }

    /// The encoding a source type gets when the file names none: lossless and what a trainer expects.
    static func defaultEncoding(for type: SourceType) -> MDSEncoding {
        switch type {
        case .bool: return .uint8
        case .int16: return .int16
        case .int32: return .int32
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .numeric, .text, .date, .uuid: return .str
        case .bytea: return .bytes
        case .timestamp: return .int64
        case .json, .textArray, .intArray: return .json
        }
    }

    static let integerEncodings: [MDSEncoding] = [.int, .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64]
    static let floatEncodings: [MDSEncoding] = [.float16, .float32, .float64]

    /// Which encodings each source type can be written as without guessing.
    static func allowedEncodings(for type: SourceType) -> [MDSEncoding] {
        switch type {
        case .bool: return integerEncodings + [.str]
        case .int16, .int32, .int64: return integerEncodings + floatEncodings + [.str]
        case .float32, .float64: return floatEncodings + [.str]
        case .numeric: return [.str, .float32, .float64, .int, .int64]
        case .text: return [.str, .json, .bytes]
        case .bytea: return [.bytes, .jpeg, .png]
        case .timestamp: return [.int64, .int, .float64, .str]
        case .date: return [.str, .int32, .int64, .int]
        case .json: return [.json, .str]
        case .uuid: return [.str]
        case .textArray: return [.json, .str]
        case .intArray: return [.json] + [NDType.int64, .int32, .int16, .uint8, .float32, .float64].map { .ndarray(dtype: $0) }
        }
    }

    func resolvedEncoding(for type: SourceType) -> MDSEncoding { encoding ?? Self.defaultEncoding(for: type) }

    func outputColumns(name: String, sourceType: SourceType) -> Result<[MDSColumn], TransformTypeError> {
        let chosen = resolvedEncoding(for: sourceType)
        let allowed = Self.allowedEncodings(for: sourceType)
        guard allowed.contains(chosen) else {
            let names = allowed.map(\.name).joined(separator: ", ")
            return .failure(TransformTypeError(message: "encoding '\(chosen.name)' cannot hold a \(sourceType.rawValue) column (use one of: \(names))"))
        }
        if let defaultText, case .failure(let rejection) = Result(catching: { () throws(SampleRejection) in
            try convertText(defaultText, to: chosen)
        }) {
            return .failure(TransformTypeError(message: "default '\(defaultText)' does not fit encoding \(chosen.name): \(rejection.message)"))
        }
        return .success([MDSColumn(name: name, encoding: chosen)])
    }

    func value(_ value: PostgresValue, sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) -> MDSValue {
        try self.value(value, sourceType: sourceType, name: name)
    }

    /// The value alone decides (no other column, no media): what `DirectSampleEncoder` calls without a decoded row.
    func value(_ value: PostgresValue, sourceType: SourceType, name: String) throws(SampleRejection) -> MDSValue {
        let target = resolvedEncoding(for: sourceType)
        if case .null = value {
            if let defaultText { return try convertText(defaultText, to: target) }
            if target == .json { return .json("null") }
            throw SampleRejection(reason: .nullValue, message: "column '\(name)' is NULL and has no default")
        }
        return try convert(value, to: target)
    }
}

/// Converts a decoded PostgreSQL value to the MDS value of an encoding, checking ranges so that a value that does not
/// fit is a quarantined row, never a wrapped number.
///
/// PostgreSQL's 'infinity' / '-infinity' timestamps and dates keep PostgreSQL's own representation in integer
/// encodings (Int64.max / Int64.min microseconds, Int32.max / Int32.min days: they sort after / before every
/// finite value, and the text form round-trips), become ±infinity in float64, and the words "infinity" /
/// "-infinity" in str; never a date in year 294247.
func convert(_ value: PostgresValue, to encoding: MDSEncoding) throws(SampleRejection) -> MDSValue {
    switch value {
    case .null:
        throw SampleRejection(reason: .nullValue, message: "value is NULL")
    case .bool(let b):
        return encoding == .str ? .string(b ? "true" : "false") : try integer(b ? 1 : 0, as: encoding)
    case .int16(let v): return try integer(Int64(v), as: encoding)
    case .int32(let v): return try integer(Int64(v), as: encoding)
    case .int64(let v): return try integer(v, as: encoding)
    case .float32(let v): return encoding == .str ? .string("\(v)") : .float(Double(v))
    case .float64(let v): return encoding == .str ? .string("\(v)") : .float(v)
    case .numeric(let text):
        switch encoding {
        case .str: return .string(text)
        case .float32, .float64:
            guard let d = Double(text) else { throw SampleRejection(reason: .invalidValue, message: "numeric '\(text)' is not a finite number") }
            return .float(d)
        default:
            guard let i = Int64(text) ?? Int64(exactly: Double(text) ?? .nan) else {
                throw SampleRejection(reason: .valueOutOfRange, message: "numeric '\(text)' is not a whole number in int64 range")
            }
            return try integer(i, as: encoding)
        }
    case .text(let s): return try convertText(s, to: encoding)
    case .bytea(let bytes): return .borrowedBytes(bytes)  // in place: no copy of libpq's buffer
    case .timestamptz(let micros):
        switch encoding {
        case .str: return .string(CalendarText.iso8601(microsecondsSinceUnixEpoch: micros))
        case .float64:
            if micros == PostgresValue.infinity { return .float(.infinity) }
            if micros == PostgresValue.negativeInfinity { return .float(-.infinity) }
            return .float(Double(micros) / 1_000_000)
        default: return try integer(micros, as: encoding)
        }
    case .date(let days):
        return encoding == .str ? .string(CalendarText.iso8601(daysSinceUnixEpoch: days)) : try integer(Int64(days), as: encoding)
    case .json(let text): return encoding == .str ? .string(text) : .json(text)
    case .uuid(let text): return .string(text)
    case .textArray(let items):
        let text = jsonText(items)
        return encoding == .str ? .string(text) : .json(text)
    case .int64Array(let items):
        if case .ndarray(let dtype?, _) = encoding {
            guard items.allSatisfy({ $0 != nil }) else {
                throw SampleRejection(reason: .nullValue, message: "an array with NULL elements cannot become an ndarray")
            }
            return try ndarray(items.map { $0! }, dtype: dtype)
        }
        return .json(jsonText(items))
    }
}

/// Text (from a text column, a `default` or a label map) in the target encoding.
func convertText(_ text: String, to encoding: MDSEncoding) throws(SampleRejection) -> MDSValue {
    switch encoding {
    case .str: return .string(text)
    case .bytes: return .bytes(Array(text.utf8))
    case .json:
        if let problem = MDSJSON.syntaxProblem(in: text) {
            throw SampleRejection(reason: .invalidJSON, message: "text is not valid JSON (\(problem)): \(text.prefix(80))")
        }
        return .json(text)
    case .float16, .float32, .float64:
        guard let d = Double(text) else { throw SampleRejection(reason: .invalidValue, message: "'\(text)' is not a number") }
        return .float(d)
    default:
        if encoding == .uint64, let u = UInt64(text) { return .uint(u) }
        guard let i = Int64(text) else { throw SampleRejection(reason: .invalidValue, message: "'\(text)' is not a whole number") }
        return try integer(i, as: encoding)
    }
}

/// An integer in the target encoding, through the one range check (`MDSEncoding.holds`) the writer uses too.
private func integer(_ v: Int64, as encoding: MDSEncoding) throws(SampleRejection) -> MDSValue {
    switch encoding {
    case .str: return .string(String(v))
    case .float16, .float32, .float64: return .float(Double(v))
    default:
        guard encoding.holds(v) else {
            throw SampleRejection(reason: .valueOutOfRange, message: "\(v) does not fit \(encoding.name)")
        }
        return encoding == .uint64 ? .uint(UInt64(v)) : .int(v)
    }
}

private func ndarray(_ values: [Int64], dtype: NDType) throws(SampleRejection) -> MDSValue {
    var data: [UInt8] = []
    data.reserveCapacity(values.count * dtype.byteWidth)
    for v in values {
        switch dtype {
        case .float32: withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { data.append(contentsOf: $0) }
        case .float64: withUnsafeBytes(of: Double(v).bitPattern.littleEndian) { data.append(contentsOf: $0) }
        case .float16:
            throw SampleRejection(reason: .invalidValue, message: "integer arrays cannot become ndarray:float16")
        default:
            let scalar = ValueTransform.integerEncodings.first { $0.name == dtype.rawValue }!
            guard scalar.holds(v) else {
                throw SampleRejection(reason: .valueOutOfRange, message: "\(v) does not fit \(dtype.rawValue)")
            }
            withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0.prefix(dtype.byteWidth)) }
        }
    }
    return .ndarray(NDArray(dtype: dtype, shape: [values.count], data: data))
}

private func jsonText<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.withoutEscapingSlashes]
    return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "null"
}

/// A bytea value goes to the shard writer in place: a value of a binary COPY is a slice of libpq's buffer, and the
/// writer appends a large one from there straight to its spool file.
extension PostgresBytes: MDSBorrowedBytes {}
