import Foundation
import Media
import Postgres
import MDS

/// What a source column holds, as far as transforms care. Decided from the query's result description before
/// any row is read, so a type the tool cannot map is reported up front, naming the column.
enum SourceType: String, Sendable, Equatable {
    case bool, int16, int32, int64, float32, float64, numeric, text, bytea, timestamp, date, json, uuid, textArray, intArray

    init?(_ type: PostgresType) {
        switch type.name {
        case "bool": self = .bool
        case "int2": self = .int16
        case "int4": self = .int32
        case "int8": self = .int64
        case "float4": self = .float32
        case "float8": self = .float64
        case "numeric": self = .numeric
        case "text", "varchar", "bpchar", "name", "citext": self = .text
        case "bytea": self = .bytea
        case "timestamptz", "timestamp": self = .timestamp
        case "date": self = .date
        case "json", "jsonb": self = .json
        case "uuid": self = .uuid
        case "_text", "_varchar", "_bpchar": self = .textArray
        case "_int2", "_int4", "_int8": self = .intArray
        default: return nil
        }
    }

    var isInteger: Bool { [.int16, .int32, .int64].contains(self) }
}

/// Why one row could not become a sample. It goes to the version's quarantine file; the run goes on.
public struct SampleRejection: Error, Sendable, Equatable {
    /// Written to the quarantine file as its stable snake_case code.
    public var reason: QuarantineReason
    public var message: String

    public init(reason: QuarantineReason, message: String) {
        self.reason = reason
        self.message = message
    }
}

/// What transforms share within a run: media limits and the media root for path columns.
struct TransformContext: Sendable {
    var mediaRoot: MediaRoot?
    var limits: MediaLimits
}

/// One output column's computation: its options from the pipeline file, the MDS columns it produces for a given
/// source type, and the work on one value. Implementations are value types, shared read-only across workers.
protocol ColumnTransform: Sendable {
    /// The key that selects it in a column entry of the pipeline file.
    static var key: String { get }
    static func parse(_ options: ConfigNode, column: String, issues: inout ConfigIssues) -> Self?

    /// Other source columns it reads besides `from` (e.g. a time window's start and end columns).
    var extraSourceColumns: [String] { get }

    /// The MDS columns written for output column `name`, or why the source type cannot feed this transform.
    func outputColumns(name: String, sourceType: SourceType) -> Result<[MDSColumn], TransformTypeError>

    func apply(_ value: PostgresValue, sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) -> [(String, MDSValue)]

    /// Puts this transform's values for one row into `sample` at `slots` (the positions of `outputColumns`, whose
    /// names are `names`). Implemented once for all transforms below; single-value transforms skip the array of
    /// pairs that `apply` returns.
    func fill(_ sample: inout [MDSValue], slots: [Int], names: [String], layout: SampleLayout, value: PostgresValue,
              sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection)
}

extension ColumnTransform {
    var extraSourceColumns: [String] { [] }

    func fill(_ sample: inout [MDSValue], slots: [Int], names: [String], layout: SampleLayout, value: PostgresValue,
              sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) {
        let produced = try apply(value, sourceType: sourceType, row: row, name: name, context: context)
        guard produced.count == slots.count else {
            throw SampleRejection(reason: .invalidValue, message: "transform of column '\(name)' produced \(produced.count) values for \(slots.count) columns")
        }
        for (index, (producedName, value)) in produced.enumerated() {
            // Transforms list their values in the order of their columns; a name is looked up only if not.
            let slot = producedName == names[index] ? slots[index] : layout.slots[producedName]
            guard let slot else {
                throw SampleRejection(reason: .invalidValue, message: "transform of column '\(name)' produced an unknown column '\(producedName)'")
            }
            sample[slot] = value
        }
    }
}

/// A transform that writes exactly one MDS value, under the output column's own name (plain values, label maps).
/// The row processor calls `value` directly and puts the result in its precomputed slot: no per-row array of
/// (name, value) pairs and no lookup by name, which matters for rows of a few hundred bytes.
protocol SingleValueTransform: ColumnTransform {
    func value(_ value: PostgresValue, sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) -> MDSValue
}

extension SingleValueTransform {
    func fill(_ sample: inout [MDSValue], slots: [Int], names: [String], layout: SampleLayout, value: PostgresValue,
              sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) {
        sample[slots[0]] = try self.value(value, sourceType: sourceType, row: row, name: name, context: context)
    }

    func apply(_ value: PostgresValue, sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) -> [(String, MDSValue)] {
        [(name, try self.value(value, sourceType: sourceType, row: row, name: name, context: context))]
    }
}

struct TransformTypeError: Error {
    var message: String
}

/// Every transform a pipeline file can name. Listed explicitly: adding one is adding a line here.
enum TransformRegistry {
    static let all: [any ColumnTransform.Type] = [
        LabelMapTransform.self,
        VideoFramesTransform.self,
        AudioPCMTransform.self,
        ImageTransform.self,
        ProbeTransform.self,
        PassthroughTransform.self,
    ]

    static func named(_ key: String) -> (any ColumnTransform.Type)? {
        all.first { $0.key == key }
    }

    static var keys: [String] { all.map { $0.key } }
}

/// The media a value points at: bytes for bytea, a file under the media root for text paths.
func mediaInput(_ value: PostgresValue, context: TransformContext) throws(SampleRejection) -> MediaInput {
    switch value {
    case .bytea(let bytes):
        // FFmpeg reads from an array: a copy, small next to decoding (passthrough keeps the bytes in place instead).
        return .bytes(Array(bytes))
    case .text(let path):
        guard let root = context.mediaRoot else {
            throw SampleRejection(reason: .mediaPathWithoutRoot, message: "a path column needs media.root in the pipeline file")
        }
        do { return try root.resolve(path) } catch { throw SampleRejection(media: error) }
    case .null:
        throw SampleRejection(reason: .nullValue, message: "the media column is NULL")
    default:
        throw SampleRejection(reason: .invalidValue, message: "a media column must be bytea or a text path")
    }
}

func mediaSourceCheck(_ sourceType: SourceType) -> TransformTypeError? {
    sourceType == .bytea || sourceType == .text
        ? nil : TransformTypeError(message: "media transforms read bytea (the media bytes) or text (a path under media.root), not \(sourceType.rawValue)")
}

extension SampleRejection {
    /// Media failures keep FFmpeg's classification, prefixed so they group apart from value problems.
    init(media error: MediaError) {
        self.init(reason: QuarantineReason(media: error.reason), message: error.message)
    }
}

/// A time window read from the row, e.g. the span of a video the user's feedback is about.
struct WindowColumns: Sendable {
    var startColumn: String?
    var endColumn: String?
    /// Units of the columns' numbers, in seconds (ms columns: 0.001).
    var unitSeconds: Double

    static func parse(_ node: ConfigNode, issues: inout ConfigIssues) -> WindowColumns? {
        guard var reader = MappingReader(node, issues: &issues) else { return nil }
        var window = WindowColumns(startColumn: nil, endColumn: nil, unitSeconds: 0.001)
        let startMs = reader.string("start_ms", issues: &issues)?.0
        let endMs = reader.string("end_ms", issues: &issues)?.0
        let startS = reader.string("start_s", issues: &issues)?.0
        let endS = reader.string("end_s", issues: &issues)?.0
        if (startMs != nil || endMs != nil) && (startS != nil || endS != nil) {
            issues.add("'\(node.path)' takes either start_ms/end_ms or start_s/end_s columns, not both", at: node.location)
        }
        if startS != nil || endS != nil {
            window.unitSeconds = 1
            window.startColumn = startS
            window.endColumn = endS
        } else {
            window.startColumn = startMs
            window.endColumn = endMs
        }
        if window.startColumn == nil && window.endColumn == nil {
            issues.add("'\(node.path)' needs a start or an end column", at: node.location)
        }
        reader.reportUnknownKeys(issues: &issues)
        return window
    }

    var columns: [String] { [startColumn, endColumn].compactMap { $0 } }

    func resolve(_ row: PostgresRow) throws(SampleRejection) -> TimeWindow? {
        func seconds(_ column: String?) throws(SampleRejection) -> Double? {
            guard let column, let value = row[column] else { return nil }
            switch value {
            case .null: return nil
            case .int16(let v): return Double(v) * unitSeconds
            case .int32(let v): return Double(v) * unitSeconds
            case .int64(let v): return Double(v) * unitSeconds
            case .float32(let v): return Double(v) * unitSeconds
            case .float64(let v): return v * unitSeconds
            case .numeric(let text):
                guard let v = Double(text) else { break }
                return v * unitSeconds
            default: break
            }
            throw SampleRejection(reason: .invalidWindow, message: "window column '\(column)' must be a number")
        }
        let start = try seconds(startColumn)
        let end = try seconds(endColumn)
        if start == nil && end == nil { return nil }
        let from = max(0, start ?? 0)
        if let end, end <= from {
            throw SampleRejection(reason: .invalidWindow, message: "window end \(end)s is not after its start \(from)s")
        }
        return TimeWindow(startSeconds: from, endSeconds: end)
    }
}

/// The resize modes, in the order the pipeline file's error messages list them.
let resizeModes: [ResizeMode] = [.pad, .crop, .stretch]
