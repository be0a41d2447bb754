import Postgres
import MDS

/// The result of one source row: a sample for a split, or a quarantined row.
enum ProcessedRow: Sendable {
    case sample(split: String, values: SampleValues, cursor: PostgresValue, sourceBytes: Int)
    case rejected(QuarantineEntry, cursor: PostgresValue, sourceBytes: Int)
    /// A row of the re-read window below the previous cursor that a version already holds (see RevisitPlan).
    case alreadyPublished
}

/// The names of a sample's columns in the order MDS stores them (code point order), shared by every sample of a run.
final class SampleLayout: Sendable {
    let names: [String]
    let slots: [String: Int]

    init(columns: [MDSColumn]) {
        names = columns.map(\.name)
        slots = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
    }
}

/// One sample's values, one per column of the layout, in the writer's column order.
struct SampleValues: Sendable {
    let layout: SampleLayout
    var values: [MDSValue]

    /// The value of a column, e.g. `__key__`; nil when there is no such column.
    subscript(name: String) -> MDSValue? {
        layout.slots[name].map { values[$0] }
    }
}

extension MDSWriter {
    /// Writes a sample whose values are already in this writer's column order (the plan sorts them the same way).
    func write(_ sample: SampleValues) throws(ShardError) {
        try write(orderedValues: sample.values)
    }
}

/// Turns a row into a sample. Pure and shared read-only across worker threads.
struct RowProcessor: Sendable {
    let plan: SamplePlan
    let splits: SplitAssigner
    let context: TransformContext
    let layout: SampleLayout

    /// Each output's transform, with the slots of the columns it produces, resolved once per run.
    private enum Step: Sendable {
        case single(any SingleValueTransform, slot: Int)
        case multiple(any ColumnTransform, slots: [Int], names: [String])
    }
    private let steps: [Step]
    private let keySlot: Int

    init(plan: SamplePlan, splits: SplitAssigner, context: TransformContext) {
        self.plan = plan
        self.splits = splits
        self.context = context
        let layout = SampleLayout(columns: plan.mdsColumns)
        self.layout = layout
        keySlot = layout.slots[SamplePlan.keyColumnName]!
        steps = plan.outputs.map { output in
            let names = output.columns.map(\.name)
            if let single = output.config.transform as? any SingleValueTransform, names.count == 1 {
                return .single(single, slot: layout.slots[names[0]]!)
            }
            return .multiple(output.config.transform, slots: names.map { layout.slots[$0]! }, names: names)
        }
    }

    func process(_ row: PostgresRow) -> ProcessedRow {
        let cursor = row.values[plan.cursorIndex]
        let sourceBytes = row.values.reduce(0) { $0 + $1.approximateSize }
        let keyValue = row.values[plan.keyIndex]
        guard let key = keyValue.textForParameter else {
            let entry = QuarantineEntry(key: nil, reason: .nullKey, message: "the key column is NULL", column: nil)
            return .rejected(entry, cursor: cursor, sourceBytes: sourceBytes)
        }
        // Every slot is written below: the key's, then each output's (the plan's columns are exactly these).
        var values = [MDSValue](repeating: .int(0), count: layout.names.count)
        values[keySlot] = .string(key)
        for (output, step) in zip(plan.outputs, steps) {
            let source = row.values[output.sourceIndex]
            let name = output.config.name
            do throws(SampleRejection) {
                switch step {
                case .single(let transform, let slot):
                    values[slot] = try transform.value(source, sourceType: output.sourceType, row: row, name: name, context: context)
                case .multiple(let transform, let slots, let names):
                    let produced = try transform.apply(source, sourceType: output.sourceType, row: row, name: name, context: context)
                    guard produced.count == slots.count else {
                        throw SampleRejection(reason: .invalidValue, message: "transform of column '\(name)' produced \(produced.count) values for \(slots.count) columns")
                    }
                    for (index, (producedName, value)) in produced.enumerated() {
                        // Transforms list their values in the order of their columns; a name is looked up only if not.
                        let slot = producedName == names[index] ? slots[index] : layout.slots[producedName]
                        guard let slot else {
                            throw SampleRejection(reason: .invalidValue, message: "transform of column '\(name)' produced an unknown column '\(producedName)'")
                        }
                        values[slot] = value
                    }
                }
            } catch {
                let entry = QuarantineEntry(key: key, reason: error.reason, message: error.message, column: name)
                return .rejected(entry, cursor: cursor, sourceBytes: sourceBytes)
            }
        }
        let group = plan.groupIndex.flatMap { row.values[$0].textForParameter } ?? key
        return .sample(split: splits.split(forGroup: group), values: SampleValues(layout: layout, values: values), cursor: cursor, sourceBytes: sourceBytes)
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
