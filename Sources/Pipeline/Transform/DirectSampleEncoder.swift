import MDS
import Postgres

/// Turns undecoded COPY rows (`CopyRowBatch`) into encoded MDS samples in one buffer per batch, when every output
/// column is a plain value: the path of millions of small rows (ratings, labels, corrections).
///
/// `RowProcessor` makes a `String` per text value, an array of values per row and another per sample, and hands them
/// to the writer's thread; on rows of a few hundred bytes that was most of the run's CPU after zstd. Here a text value
/// goes from the COPY tuple into the sample's bytes (`MDSSampleBuilder`), other values are decoded and converted by
/// the same code as on the row path, and a batch's samples travel as one byte buffer with a small record per row.
///
/// The shards are byte for byte the row path's (`DirectEncodingTests` compares whole runs): anything this encoder
/// does not do itself, it hands to the row path, row by row — a row whose value needs a `default` or goes to
/// quarantine, a NULL key, a value the encoding cannot hold. A row whose bytes cannot be decoded (text that is not
/// UTF-8) ends the batch with the decoder's own error, after the rows before it.
struct DirectSampleEncoder: Sendable {
    /// What fills one MDS column, in storage order.
    private enum Filler: Sendable {
        case key
        /// A text source column written as `str` (its bytes checked to be UTF-8), or a bytea written as `bytes`, `jpeg`
        /// or `png` (in MDS, all three are the bytes as they are): the value's bytes as they came.
        case inPlace(field: Int, output: Int)
        /// Any other plain value: decoded, then converted by the column's `ValueTransform`.
        case value(field: Int, output: Int)
    }

    private struct Output: Sendable {
        let transform: ValueTransform
        let sourceType: SourceType
        let name: String
    }

    /// How a field of a row is read: text and bytea values are bytes as they came; the rest is decoded.
    private enum FieldKind { case text, bytes, decoded }

    private let processor: RowProcessor
    private let layout: MDSSampleBuilder.Layout
    private let fillers: [Filler]
    private let outputs: [Output]
    private let fieldCount: Int
    private let keyField: Int
    private let cursorField: Int
    private let groupField: Int?

    /// nil when a column needs more than its own value (media, label maps, passthrough, a window of other columns).
    init?(processor: RowProcessor) {
        let plan = processor.plan
        var outputs: [Output] = []
        var fillerByName: [String: Filler] = [SamplePlan.keyColumnName: .key]
        for output in plan.outputs {
            guard let transform = output.config.transform as? ValueTransform, output.columns.count == 1 else { return nil }
            let index = outputs.count
            outputs.append(Output(transform: transform, sourceType: output.sourceType, name: output.config.name))
            let encoding = output.columns[0].encoding
            let inPlace = (output.sourceType == .text && encoding == .str) || (output.sourceType == .bytea && [.bytes, .jpeg, .png].contains(encoding))
            fillerByName[output.columns[0].name] = inPlace
                ? .inPlace(field: output.sourceIndex, output: index) : .value(field: output.sourceIndex, output: index)
        }
        self.processor = processor
        self.outputs = outputs
        layout = MDSSampleBuilder.Layout(columns: plan.mdsColumns)
        fillers = layout.columns.compactMap { fillerByName[$0.name] }
        guard fillers.count == layout.columns.count else { return nil }
        fieldCount = plan.selectedColumns.count
        keyField = plan.keyIndex
        cursorField = plan.cursorIndex
        groupField = plan.groupIndex
    }

    /// Encodes every row of `batch`; rows that `window` says a version already holds are marked, not encoded.
    func encode(_ batch: CopyRowBatch, window: PublishedWindow?) -> EncodedSamples {
        var encoded = EncodedSamples(capacity: batch.byteCount, rows: batch.count)
        guard batch.columns.count == fieldCount else {
            // Not the statement this encoder was planned for: the row path decides.
            for index in 0..<batch.count { rowPath(batch, index, window: window, into: &encoded) }
            return encoded
        }
        // Per batch, not per row: where each field of the current row lies, its decoded value (fields read as bytes
        // excepted), and how each field is read (asked once: a call into another module per field and row adds up).
        var fields = [CopyField](repeating: CopyField(), count: fieldCount)
        var values = [PostgresValue](repeating: .null, count: fieldCount)
        let kinds = (0..<fieldCount).map { batch.isText($0) ? FieldKind.text : batch.isBytea($0) ? .bytes : .decoded }
        batch.withTuples { tuples in
            fields.withUnsafeMutableBufferPointer { fields in
                values.withUnsafeMutableBufferPointer { values in
                    kinds.withUnsafeBufferPointer { kinds in
                        for index in 0..<batch.count where encoded.failure == nil {
                            batch.fieldRanges(ofRow: index, in: tuples, into: fields)
                            encodeRow(batch, index, tuples: tuples, fields: fields, values: values, kinds: kinds,
                                      window: window, into: &encoded)
                        }
                    }
                }
            }
        }
        return encoded
    }

    private func encodeRow(
        _ batch: CopyRowBatch, _ index: Int, tuples: UnsafeRawBufferPointer, fields: UnsafeMutableBufferPointer<CopyField>,
        values: UnsafeMutableBufferPointer<PostgresValue>, kinds: UnsafeBufferPointer<FieldKind>, window: PublishedWindow?,
        into encoded: inout EncodedSamples
    ) {
        // Every field is checked as the decoder would check it: text as UTF-8, the rest by decoding it (bytea needs no
        // check). Text and bytea stay bytes.
        var sourceBytes = 0
        for field in 0..<fieldCount {
            let range = fields[field]
            if range.isNull {
                values[field] = .null
                continue
            }
            let bytes = range.bytes(in: tuples)
            switch kinds[field] {
            case .text:
                guard CopyRowBatch.isValidText(bytes) else { return rowPath(batch, index, window: window, into: &encoded) }
                sourceBytes += bytes.count
            case .bytes:
                sourceBytes += bytes.count
            case .decoded:
                guard let value = try? batch.decode(bytes, column: field) else {
                    return rowPath(batch, index, window: window, into: &encoded)
                }
                sourceBytes += value.approximateSize
                values[field] = value
            }
        }
        func value(_ field: Int) -> PostgresValue {
            guard !fields[field].isNull else { return .null }
            switch kinds[field] {
            case .text: return .text(String(decoding: fields[field].bytes(in: tuples), as: UTF8.self))
            case .bytes: return .bytea(PostgresBytes(fields[field].bytes(in: tuples)))
            case .decoded: return values[field]
            }
        }
        let keyValue = value(keyField)
        guard let key = keyValue.textForParameter else { return rowPath(batch, index, window: window, into: &encoded) }
        let cursor = value(cursorField)
        TestHooks.pause(at: .transform) { key }
        if let window, window.holds(cursor: cursor, key: keyValue) {
            encoded.append(EncodedRow(kind: .alreadyPublished, sourceBytes: sourceBytes))
            return
        }
        var group = groupField.flatMap { value($0).textForParameter } ?? key
        let slot = group.withUTF8 { processor.splits.slot(forGroup: UnsafeRawBufferPointer($0)) }

        let start = encoded.bytes.count
        do {
            var sample = MDSSampleBuilder(layout, in: &encoded.bytes)
            for filler in fillers {
                switch filler {
                case .key:
                    try sample.appendText(key, into: &encoded.bytes)
                case .inPlace(let field, _) where !fields[field].isNull:
                    try sample.appendBytes(fields[field].bytes(in: tuples), into: &encoded.bytes)
                case .inPlace(let field, let output), .value(let field, let output):
                    let converted = try outputs[output].transform.value(
                        value(field), sourceType: outputs[output].sourceType, name: outputs[output].name)
                    try sample.append(converted, into: &encoded.bytes)
                }
            }
            sample.finish()
        } catch {
            // A default, a quarantine, or a value the encoding refuses: the row path does it and says why.
            encoded.bytes.removeSubrange(start...)
            return rowPath(batch, index, window: window, into: &encoded)
        }
        encoded.append(EncodedRow(kind: .sample, split: slot, key: key, cursor: cursor, sourceBytes: sourceBytes,
                                  end: encoded.bytes.count))
    }

    /// Row `index` decoded and processed as on the row path; a row that does not decode ends the batch with its error.
    private func rowPath(_ batch: CopyRowBatch, _ index: Int, window: PublishedWindow?, into encoded: inout EncodedSamples) {
        let row: PostgresRow
        do { row = try batch.row(index) } catch {
            encoded.failure = error
            return
        }
        encoded.appendProcessed(processor.process(row, window: window), sourceBytes: row.values.reduce(0) { $0 + $1.approximateSize })
    }
}

/// A batch of rows as `DirectSampleEncoder` left them: the encoded samples back to back in `bytes`, and a record per
/// source row, in source order, saying what became of it.
struct EncodedSamples: Sendable {
    var bytes: [UInt8] = []
    var rows: [EncodedRow] = []
    /// The rows handed to the row path, in order: one per `.processed` record.
    var processed: [ProcessedRow] = []
    /// A row that could not be decoded: the run fails with this after the rows before it.
    var failure: PostgresError?
    /// The approximate decoded size of every row read, for the run's figures (`PostgresValue.approximateSize`).
    private(set) var fetchedBytes = 0

    init(capacity: Int, rows: Int) {
        bytes.reserveCapacity(capacity)
        self.rows.reserveCapacity(rows)
    }

    mutating func append(_ row: EncodedRow) {
        rows.append(row)
        fetchedBytes += row.sourceBytes
    }

    mutating func appendProcessed(_ row: ProcessedRow, sourceBytes: Int) {
        processed.append(row)
        append(EncodedRow(kind: .processed, sourceBytes: sourceBytes))
    }
}

/// What became of one source row of an `EncodedSamples` batch.
struct EncodedRow: Sendable {
    enum Kind: UInt8, Sendable {
        /// Encoded: the sample's bytes end at `end` and start where the previous sample's ended.
        case sample
        /// Processed on the row path: the batch's next `processed` entry.
        case processed
        /// A row of the re-read window that a version already holds.
        case alreadyPublished
    }

    var kind: Kind
    /// The index of the sample's split in the pipeline's split names.
    var split = 0
    var key = ""
    var cursor = PostgresValue.null
    var sourceBytes: Int
    var end = 0
}
