/// Rows of a binary COPY as they came off the wire, undecoded: each row's tuple (field count, then per field an int32
/// length, -1 for NULL, and the value's bytes in PostgreSQL's binary send format) back to back in one buffer.
///
/// For rows of a few hundred bytes, decoding into `PostgresValue`s (a `String` per text value, an array per row) and
/// handing those objects to other threads costs more than everything else etl does with the row. A consumer that
/// only copies values into another byte format (an MDS sample) reads them in place from here instead: one buffer per
/// batch, nothing allocated per row or value. The framing of every tuple was checked when it was added, so the field
/// walk below cannot leave the buffer; the values themselves are checked where they are read (`isValidText`,
/// `decode`), and `row(_:)` decodes a whole row, with the decoder's own errors, for anything the consumer cannot take
/// in place.
public struct CopyRowBatch: Sendable {
    public let columns: [PostgresColumn]
    let formats: [ValueFormat]
    /// Fields each tuple carries after the columns (a chunked stream's part number and lengths), never read in place.
    let trailingFormats: [ValueFormat]
    let statement: String
    private var tuples: [UInt8] = []
    /// Where each row's tuple ends in `tuples`.
    private var ends: [Int] = []

    init(columns: [PostgresColumn], formats: [ValueFormat], trailingFormats: [ValueFormat] = [], statement: String, capacity: Int) {
        self.columns = columns
        self.formats = formats
        self.trailingFormats = trailingFormats
        self.statement = statement
        tuples.reserveCapacity(capacity)
        ends.reserveCapacity(256)
    }

    public var count: Int { ends.count }
    public var isEmpty: Bool { ends.isEmpty }
    /// The bytes of every tuple, framing included (what came over the wire for these rows).
    public var byteCount: Int { tuples.count }

    /// Appends a tuple whose framing `CopyRowDecoder.frame` checked.
    mutating func append(_ tuple: UnsafeRawBufferPointer) {
        tuples.append(contentsOf: tuple)
        ends.append(tuples.count)
    }

    /// Whether the values of `column` are text as sent (UTF-8, to be checked with `isValidText`); every other column's
    /// values go through `decode`.
    public func isText(_ column: Int) -> Bool { formats[column] == .text }

    /// Whether the values of `column` are `bytea`: their bytes as they are.
    public func isBytea(_ column: Int) -> Bool { formats[column] == .bytea }

    /// Calls `body` with the batch's tuple bytes, the memory that `fieldRanges` positions point into.
    public func withTuples<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try tuples.withUnsafeBytes(body)
    }

    /// The value positions of row `index` within `tuples`, one per column: `length` -1 is NULL.
    public func fieldRanges(ofRow index: Int, in tuples: UnsafeRawBufferPointer, into fields: UnsafeMutableBufferPointer<CopyField>) {
        precondition(fields.count >= columns.count, "one field per column")
        var offset = (index == 0 ? 0 : ends[index - 1]) + 2
        for column in columns.indices {
            let length = Int(Int32(bigEndian: tuples.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
            offset += 4
            fields[column] = CopyField(offset: offset, length: length)
            if length > 0 { offset += length }
        }
    }

    /// Whether `bytes` of a text column are valid UTF-8, as the decoder requires (a row where they are not is
    /// decoded with `row(_:)`, which reports the error).
    public static func isValidText(_ bytes: UnsafeRawBufferPointer) -> Bool {
        PostgresValue.isValidUTF8(bytes)
    }

    /// The value of a non-NULL field of `column`, decoded exactly as a decoded row's would be.
    public func decode(_ bytes: UnsafeRawBufferPointer, column: Int) throws(PostgresError) -> PostgresValue {
        do { return try PostgresValue.decode(bytes, as: formats[column]) } catch {
            throw CopyRowDecoder.named(error, column: columns[column], statement: statement)
        }
    }

    /// Row `index` decoded as `PostgresConnection.streamBatches` would have handed it over (bytea values copied).
    public func row(_ index: Int) throws(PostgresError) -> PostgresRow {
        let start = index == 0 ? 0 : ends[index - 1]
        let trailing = trailingFormats.map { _ in PostgresColumn(name: "etl_trailing", type: PostgresType(oid: 23, name: "int4")) }
        let decoder = CopyRowDecoder(columns: columns + trailing, formats: formats + trailingFormats, statement: statement)
        let decoded = tuples.withUnsafeBytes { bytes in
            Result { () throws(PostgresError) in try decoder.decodeTuple(UnsafeRawBufferPointer(rebasing: bytes[start..<ends[index]])) }
        }
        var values = try decoded.get()
        values.removeLast(trailingFormats.count)
        return PostgresRow(columns: columns, values: values)
    }
}

/// Where one value of a `CopyRowBatch` row lies in the batch's tuples; `length` -1 for NULL.
public struct CopyField: Sendable {
    public var offset: Int
    public var length: Int

    public init(offset: Int = 0, length: Int = -1) {
        self.offset = offset
        self.length = length
    }

    public var isNull: Bool { length < 0 }

    /// The value's bytes within `tuples` (the buffer `CopyRowBatch.withTuples` gives).
    public func bytes(in tuples: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: tuples[offset..<(offset + max(length, 0))])
    }
}
