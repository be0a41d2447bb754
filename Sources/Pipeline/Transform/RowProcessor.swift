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
    /// Unowned and unretained: samples are made by the million on worker threads and dropped on the writer's, and
    /// retaining one shared object per sample from several threads makes its reference count a contended cache
    /// line. The `RowProcessor` that made the sample keeps the layout alive, and a run holds its processor until
    /// the last sample is written.
    unowned(unsafe) let layout: SampleLayout
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

    /// Each output's transform, source and the slots of the columns it produces, resolved once per run. Read in
    /// place (by index), never copied per row: copies retain shared objects, which from several worker threads at
    /// once is contended.
    private struct Step: Sendable {
        let sourceIndex: Int
        let sourceType: SourceType
        let name: String
        let transform: any ColumnTransform
        let slots: [Int]
        let names: [String]

        init(_ output: SamplePlan.Output, layout: SampleLayout) {
            sourceIndex = output.sourceIndex
            sourceType = output.sourceType
            name = output.config.name
            transform = output.config.transform
            names = output.columns.map(\.name)
            slots = names.map { layout.slots[$0]! }
        }
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
        steps = plan.outputs.map { Step($0, layout: layout) }
    }

    /// `process(row)`, unless `window` says a version already holds the row (it may be a clip to decode).
    func process(_ row: PostgresRow, window: PublishedWindow?) -> ProcessedRow {
        TestHooks.pause(at: .transform) { row.values[plan.keyIndex].textForParameter }
        if let window, window.holds(row) { return .alreadyPublished }
        return process(row)
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
        for index in steps.indices {
            do throws(SampleRejection) {
                // Read in place: binding a step (or its transform) to a local would copy and retain it per row.
                try steps[index].transform.fill(
                    &values, slots: steps[index].slots, names: steps[index].names, layout: layout,
                    value: row.values[steps[index].sourceIndex], sourceType: steps[index].sourceType, row: row,
                    name: steps[index].name, context: context)
            } catch {
                let entry = QuarantineEntry(key: key, reason: error.reason, message: error.message, column: steps[index].name)
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
