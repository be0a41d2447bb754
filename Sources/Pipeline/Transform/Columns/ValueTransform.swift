import Foundation
import Postgres
import MDS

/// A plain column: the source value converted to an MDS encoding (inferred from the PostgreSQL type when the
/// pipeline file does not name one). NULLs take the column's `default`, or send the row to quarantine.
struct ValueTransform: ColumnTransform {
    static let key = "value"

    var encoding: String?
    var defaultText: String?

    static func parse(_ options: ConfigNode, column: String, issues: inout ConfigIssues) -> ValueTransform? {
        nil  // read from the column entry itself; see PipelineConfig+Loading
    }

    /// The encoding a source type gets when the file names none: lossless and what a trainer expects.
    static func defaultEncoding(for type: SourceType) -> String {
        switch type {
        case .bool: return "uint8"
        case .int16: return "int16"
        case .int32: return "int32"
        case .int64: return "int64"
        case .float32: return "float32"
        case .float64: return "float64"
        case .numeric, .text, .date, .uuid: return "str"
        case .bytea: return "bytes"
        case .timestamp: return "int64"
        case .json, .textArray, .intArray: return "json"
        }
    }

    static let integerEncodings = ["int", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
    static let floatEncodings = ["float16", "float32", "float64"]

    /// Which encodings each source type can be written as without guessing.
    static func allowedEncodings(for type: SourceType) -> [String] {
        switch type {
        case .bool: return integerEncodings + ["str"]
        case .int16, .int32, .int64: return integerEncodings + floatEncodings + ["str"]
        case .float32, .float64: return floatEncodings + ["str"]
        case .numeric: return ["str", "float32", "float64", "int", "int64"]
        case .text: return ["str", "json", "bytes"]
        case .bytea: return ["bytes", "jpeg", "png"]
        case .timestamp: return ["int64", "int", "float64", "str"]
        case .date: return ["str", "int32", "int64", "int"]
        case .json: return ["json", "str"]
        case .uuid: return ["str"]
        case .textArray: return ["json", "str"]
        case .intArray: return ["json", "ndarray:int64", "ndarray:int32", "ndarray:int16", "ndarray:uint8", "ndarray:float32", "ndarray:float64"]
        }
    }

    func resolvedEncoding(for type: SourceType) -> String { encoding ?? Self.defaultEncoding(for: type) }

    func outputColumns(name: String, sourceType: SourceType) -> Result<[MDSColumn], TransformTypeError> {
        let chosen = resolvedEncoding(for: sourceType)
        guard Self.allowedEncodings(for: sourceType).contains(chosen) else {
            let allowed = Self.allowedEncodings(for: sourceType).joined(separator: ", ")
            return .failure(TransformTypeError(message: "encoding '\(chosen)' cannot hold a \(sourceType.rawValue) column (use one of: \(allowed))"))
        }
        guard let mds = try? MDSEncoding(parsing: chosen) else {
            return .failure(TransformTypeError(message: "'\(chosen)' is not an MDS encoding"))
        }
        if let defaultText, case .failure(let rejection) = Result(catching: { () throws(SampleRejection) in
            try convertText(defaultText, to: chosen)
        }) {
            return .failure(TransformTypeError(message: "default '\(defaultText)' does not fit encoding \(chosen): \(rejection.message)"))
        }
        return .success([MDSColumn(name: name, encoding: mds)])
    }

    func apply(_ value: PostgresValue, sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) -> [(String, MDSValue)] {
        let target = resolvedEncoding(for: sourceType)
        if case .null = value {
            if let defaultText { return [(name, try convertText(defaultText, to: target))] }
            if target == "json" { return [(name, .json("null"))] }
            throw SampleRejection(reason: "null_value", message: "column '\(name)' is NULL and has no default")
        }
        return [(name, try convert(value, to: target))]
    }
}

/// Converts a decoded PostgreSQL value to the MDS value of an encoding, checking ranges so that a value that does not
/// fit is a quarantined row, never a wrapped number.
func convert(_ value: PostgresValue, to encoding: String) throws(SampleRejection) -> MDSValue {
    switch value {
    case .null:
        throw SampleRejection(reason: "null_value", message: "value is NULL")
    case .bool(let b):
        return encoding == "str" ? .string(b ? "true" : "false") : try integer(b ? 1 : 0, as: encoding)
    case .int16(let v): return try integer(Int64(v), as: encoding)
    case .int32(let v): return try integer(Int64(v), as: encoding)
    case .int64(let v): return try integer(v, as: encoding)
    case .float32(let v): return encoding == "str" ? .string("\(v)") : .float(Double(v))
    case .float64(let v): return encoding == "str" ? .string("\(v)") : .float(v)
    case .numeric(let text):
        switch encoding {
        case "str": return .string(text)
        case "float32", "float64":
            guard let d = Double(text) else { throw SampleRejection(reason: "invalid_value", message: "numeric '\(text)' is not a finite number") }
            return .float(d)
        default:
            guard let i = Int64(text) ?? Int64(exactly: Double(text) ?? .nan) else {
                throw SampleRejection(reason: "value_out_of_range", message: "numeric '\(text)' is not a whole number in int64 range")
            }
            return try integer(i, as: encoding)
        }
    case .text(let s): return try convertText(s, to: encoding)
    case .bytea(let bytes): return .bytes(bytes)
    case .timestamptz(let micros):
        switch encoding {
        case "str": return .string(isoTimestamp(micros: micros))
        case "float64": return .float(Double(micros) / 1_000_000)
        default: return try integer(micros, as: encoding)
        }
    case .date(let days):
        return encoding == "str" ? .string(isoDate(days: days)) : try integer(Int64(days), as: encoding)
    case .json(let text): return encoding == "str" ? .string(text) : .json(text)
    case .uuid(let text): return .string(text)
    case .textArray(let items):
        let text = jsonText(items)
        return encoding == "str" ? .string(text) : .json(text)
    case .int64Array(let items):
        if encoding.hasPrefix("ndarray:") {
            guard items.allSatisfy({ $0 != nil }) else {
                throw SampleRejection(reason: "null_value", message: "an array with NULL elements cannot become an ndarray")
            }
            return try ndarray(items.map { $0! }, dtype: String(encoding.dropFirst("ndarray:".count)))
        }
        return .json(jsonText(items))
    }
}

/// Text (from a text column or a `default`) in the target encoding.
func convertText(_ text: String, to encoding: String) throws(SampleRejection) -> MDSValue {
    switch encoding {
    case "str": return .string(text)
    case "bytes": return .bytes(Array(text.utf8))
    case "json":
        guard (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil else {
            throw SampleRejection(reason: "invalid_json", message: "text is not valid JSON: \(text.prefix(80))")
        }
        return .json(text)
    case "float16", "float32", "float64":
        guard let d = Double(text) else { throw SampleRejection(reason: "invalid_value", message: "'\(text)' is not a number") }
        return .float(d)
    default:
        if let u = UInt64(text), encoding == "uint64" { return .uint(u) }
        guard let i = Int64(text) else { throw SampleRejection(reason: "invalid_value", message: "'\(text)' is not a whole number") }
        return try integer(i, as: encoding)
    }
}

private func integer(_ v: Int64, as encoding: String) throws(SampleRejection) -> MDSValue {
    let range: ClosedRange<Int64>
    switch encoding {
    case "int8": range = Int64(Int8.min)...Int64(Int8.max)
    case "int16": range = Int64(Int16.min)...Int64(Int16.max)
    case "int32": range = Int64(Int32.min)...Int64(Int32.max)
    case "uint8": range = 0...Int64(UInt8.max)
    case "uint16": range = 0...Int64(UInt16.max)
    case "uint32": range = 0...Int64(UInt32.max)
    case "uint64":
        guard v >= 0 else { throw SampleRejection(reason: "value_out_of_range", message: "\(v) does not fit uint64") }
        return .uint(UInt64(v))
    case "float16", "float32", "float64": return .float(Double(v))
    case "str": return .string(String(v))
    default: range = Int64.min...Int64.max
    }
    guard range.contains(v) else {
        throw SampleRejection(reason: "value_out_of_range", message: "\(v) does not fit \(encoding)")
    }
    return .int(v)
}

private func ndarray(_ values: [Int64], dtype name: String) throws(SampleRejection) -> MDSValue {
    guard let dtype = NDType(rawValue: name) else {
        throw SampleRejection(reason: "invalid_value", message: "unknown ndarray dtype \(name)")
    }
    var data: [UInt8] = []
    data.reserveCapacity(values.count * dtype.byteWidth)
    for v in values {
        switch dtype {
        case .float32: withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { data.append(contentsOf: $0) }
        case .float64: withUnsafeBytes(of: Double(v).bitPattern.littleEndian) { data.append(contentsOf: $0) }
        default:
            guard case .int = try integer(v, as: name) else { break }
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

/// ISO 8601 in UTC with microseconds: exact, and sorts as text.
func isoTimestamp(micros: Int64) -> String {
    let seconds = micros.floorDiv(1_000_000)
    let fraction = micros - seconds * 1_000_000
    let days = seconds.floorDiv(86_400)
    let secondOfDay = seconds - days * 86_400
    let (y, m, d) = civilDate(daysSinceEpoch: days)
    return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", y, m, d, secondOfDay / 3600, (secondOfDay % 3600) / 60, secondOfDay % 60, fraction)
}

func isoDate(days: Int32) -> String {
    let (y, m, d) = civilDate(daysSinceEpoch: Int64(days))
    return String(format: "%04d-%02d-%02d", y, m, d)
}

/// Proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's civil_from_days).
private func civilDate(daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
    let z = daysSinceEpoch + 719_468
    let era = z.floorDiv(146_097)
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
}

extension Int64 {
    func floorDiv(_ divisor: Int64) -> Int64 {
        let q = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? q - 1 : q
    }
}
