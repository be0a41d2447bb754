import Postgres
import MDS

/// The result of one source row: a sample for a split, or a quarantined row.
enum ProcessedRow: Sendable {
    case sample(split: String, values: [String: MDSValue], cursor: PostgresValue, sourceBytes: Int)
    case rejected(QuarantineEntry, cursor: PostgresValue, sourceBytes: Int)
}

/// Turns a row into a sample. Pure and shared read-only across worker threads.
struct RowProcessor: Sendable {
    let plan: SamplePlan
    let splits: SplitAssigner
    let context: TransformContext

    func process(_ row: PostgresRow) -> ProcessedRow {
        let cursor = row.values[plan.cursorIndex]
        let sourceBytes = row.values.reduce(0) { $0 + $1.approximateSize }
        let keyValue = row.values[plan.keyIndex]
        guard let key = keyValue.textForParameter else {
            let entry = QuarantineEntry(key: nil, reason: "null_key", message: "the key column is NULL", column: nil)
            return .rejected(entry, cursor: cursor, sourceBytes: sourceBytes)
        }
        var values: [String: MDSValue] = [SamplePlan.keyColumnName: .string(key)]
        for output in plan.outputs {
            do {
                let produced = try output.config.transform.apply(
                    row.values[output.sourceIndex], sourceType: output.sourceType, row: row, name: output.config.name, context: context)
                for (name, value) in produced { values[name] = value }
            } catch {
                let entry = QuarantineEntry(key: key, reason: error.reason, message: error.message, column: output.config.name)
                return .rejected(entry, cursor: cursor, sourceBytes: sourceBytes)
            }
        }
        let group = plan.groupIndex.flatMap { row.values[$0].textForParameter } ?? key
        return .sample(split: splits.split(forGroup: group), values: values, cursor: cursor, sourceBytes: sourceBytes)
    }
}

extension PostgresValue {
    /// Bytes this value took on the wire, roughly: for throughput figures, not accounting.
    var approximateSize: Int {
        switch self {
        case .null: return 0
        case .bytea(let b): return b.count
        case .text(let s), .json(let s), .numeric(let s), .uuid(let s): return s.utf8.count
        case .textArray(let items): return items.reduce(0) { $0 + ($1?.utf8.count ?? 0) }
        case .int64Array(let items): return items.count * 8
        default: return 8
        }
    }
}
