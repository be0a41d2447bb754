internal import CLibPQ

/// How many rows `streamBatches` hands over at once: a batch closes when it reaches either limit, so small rows come
/// by the hundreds and a large value comes alone (it never waits for others to fill a batch).
public struct RowBatchLimits: Sendable, Equatable {
    public var maxRows: Int
    public var maxBytes: Int

    public init(maxRows: Int = 256, maxBytes: Int = 64 << 10) {
        self.maxRows = max(1, maxRows)
        self.maxBytes = max(1, maxBytes)
    }

    /// Whether a batch of `rows` rows holding `bytes` bytes of values is complete.
    public func isFull(rows: Int, bytes: Int) -> Bool { rows >= maxRows || bytes >= maxBytes }
}

extension PostgresConnection {
    /// Text that PostgreSQL reads back as the string literal `text`, quotes included (libpq's PQescapeLiteral,
    /// which knows the session's encoding and `standard_conforming_strings`). For statements that cannot take
    /// parameters, such as COPY.
    public func escapeLiteral(_ text: String) throws(PostgresError) -> String {
        guard !text.utf8.contains(0) else {
            throw PostgresError(.misuse, "a literal cannot contain a NUL character, which PostgreSQL text cannot hold")
        }
        let count = text.utf8.count
        guard let escaped = PQescapeLiteral(raw, text, count) else {
            throw connectionError(statement: nil)
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }

    /// Runs the query `select` (a SELECT, VALUES or TABLE statement without parameters; use ``escapeLiteral(_:)``)
    /// and hands its rows to `body` in batches, holding at most one batch (plus libpq's buffer) in memory.
    ///
    /// The rows travel as `COPY (select) TO STDOUT (FORMAT binary)`: one protocol message per row and no per-row
    /// result object, which is what makes millions of small rows cheap (single-row mode builds a whole PGresult,
    /// column descriptions included, for every row). Column types are learnt by describing `select` first, so
    /// an unsupported type fails before any row is read, exactly as with ``stream(_:_:_:)``; values decode with the
    /// same binary decoders. Works inside a transaction (COPY needs none of its own).
    ///
    /// If `body` throws, the COPY is cancelled on the server, the rest of its output discarded, and `body`'s error
    /// rethrown; inside a transaction, the cancel aborts it (roll back before going on). A server error after some
    /// rows (e.g. division by zero in row 5000) throws `PostgresError` with its SQLSTATE after those rows were
    /// delivered.
    ///
    /// With `chunking` (the default), a statement with bytea columns is wrapped so that a value larger than one chunk
    /// arrives in chunks and is assembled into one buffer here (see ``ByteaChunking``): a value of N MB then costs
    /// N MB plus a chunk, not 2 × N MB in libpq's buffers. `nil` sends every value whole. With `budget`, a large
    /// value is reserved there before it is assembled (see ``LargeValueReservations``).
    public func streamBatches(
        _ select: String, limits: RowBatchLimits = RowBatchLimits(), chunking: ByteaChunking? = ByteaChunking(),
        budget: (any LargeValueReservations)? = nil, _ body: ([PostgresRow]) throws -> Void
    ) throws {
        let (columns, formats) = try describeForCopy(select)
        let byteaCount = formats.count(where: { $0 == .bytea })
        let chunking = byteaCount > 0 ? chunking : nil
        var assembler = chunking.map {
            ChunkedRowAssembler(columns: columns, formats: formats, chunkSize: $0.chunkSize, statement: select, budget: budget)
        }
        defer { assembler?.discard() }
        let (copy, restore) = try prepareCopy(select, formats: formats, chunking: chunking)
        defer { restore() }
        // A chunked stream's rows are parts: the source's columns, the part number, each bytea's length (int4).
        let (trailingColumns, trailingFormats) = assembler == nil ? ([], []) : Self.partFields(byteaCount: byteaCount)
        var decoder = CopyRowDecoder(columns: columns + trailingColumns, formats: formats + trailingFormats, statement: select)
        var batch: [PostgresRow] = []
        batch.reserveCapacity(min(limits.maxRows, 4096))
        var batchBytes = 0
        var rowBytes = 0
        try copyOut(copy, statement: select) { buffer, length, taken in
            let message = UnsafeRawBufferPointer(start: buffer, count: length)
            // A row with a bytea value adopts the message (its values are slices of it, freed with the last one);
            // any other row's message is freed by `copyOut`, as soon as it is decoded.
            var adoption = AdoptedMessage(buffer: buffer, length: length)
            defer { taken = adoption.isAdopted }
            let decoded = try decoder.decodeValues(message) { adoption.slice($0) }
            rowBytes += message.count  // a row in parts counts all of them
            var completed: PostgresRow?
            if let values = consume decoded {
                // The values array goes on as the row's (no copy): a part's trailing fields are dropped in place.
                completed = assembler != nil ? try assembler!.add(consume values) : PostgresRow(columns: columns, values: values)
            }
            if let row = completed {
                batch.append(row)
                batchBytes += rowBytes
                rowBytes = 0
                if limits.isFull(rows: batch.count, bytes: batchBytes) {
                    let full = batch
                    batch.removeAll(keepingCapacity: true)
                    batchBytes = 0
                    try body(full)
                }
            }
        } atEnd: {
            if !batch.isEmpty {
                let last = batch
                batch = []
                try body(last)
            }
        }
        guard assembler?.isInsideRow != true else {
            throw PostgresError(.protocolViolation, "the chunked COPY ended inside a row", statement: select)
        }
        guard decoder.sawTrailer else {
            throw PostgresError(.protocolViolation, "the binary COPY ended without its trailer", statement: select)
        }
    }

    /// Runs the query `select` like ``streamBatches(_:limits:chunking:budget:_:)``, but hands its rows over undecoded
    /// (``CopyRowBatch``), their framing checked: a consumer that copies values into another byte format reads them in
    /// place, with nothing allocated per row or value. With chunking, a row whose `bytea` values each fit one chunk is
    /// undecoded like any other; a row with a larger value is assembled as `streamBatches` assembles it and comes
    /// decoded, on its own, after the rows before it (``CopyRows/assembled(_:)``).
    public func streamCopyRows(
        _ select: String, limits: RowBatchLimits = RowBatchLimits(), chunking: ByteaChunking? = ByteaChunking(),
        budget: (any LargeValueReservations)? = nil, _ body: (CopyRows) throws -> Void
    ) throws {
        let (columns, formats) = try describeForCopy(select)
        let byteaColumns = formats.indices.filter { formats[$0] == .bytea }
        let chunking = byteaColumns.isEmpty ? nil : chunking
        var assembler = chunking.map {
            ChunkedRowAssembler(columns: columns, formats: formats, chunkSize: $0.chunkSize, statement: select, budget: budget)
        }
        defer { assembler?.discard() }
        let (copy, restore) = try prepareCopy(select, formats: formats, chunking: chunking)
        defer { restore() }
        let (trailingColumns, trailingFormats) = chunking == nil ? ([], []) : Self.partFields(byteaCount: byteaColumns.count)
        var decoder = CopyRowDecoder(columns: columns + trailingColumns, formats: formats + trailingFormats, statement: select)
        func emptyBatch() -> CopyRowBatch {
            CopyRowBatch(columns: columns, formats: formats, trailingFormats: trailingFormats, statement: select,
                         capacity: limits.maxBytes + limits.maxBytes / 4)
        }
        var batch = emptyBatch()
        try copyOut(copy, statement: select) { buffer, length, taken in
            let message = UnsafeRawBufferPointer(start: buffer, count: length)
            guard let tuple = try decoder.frame(message) else { return }
            if let chunking, assembler!.isInsideRow
                || !ChunkedParts.isWholeRow(tuple, columns: columns.count, byteaColumns: byteaColumns, chunkSize: chunking.chunkSize) {
                // A row in parts (or whatever the assembler makes of these bytes), after the rows before it. Its chunks
                // are slices of the adopted message, as in `streamBatches`.
                if !batch.isEmpty {
                    let before = batch
                    batch = emptyBatch()
                    try body(.tuples(before))
                }
                var adoption = AdoptedMessage(buffer: buffer, length: length)
                defer { taken = adoption.isAdopted }
                let values = try decoder.decodeTuple(tuple) { adoption.slice($0) }
                if let row = try assembler!.add(values) { try body(.assembled(row)) }
                return
            }
            batch.append(tuple)
            if limits.isFull(rows: batch.count, bytes: batch.byteCount) {
                let full = batch
                batch = emptyBatch()
                try body(.tuples(full))
            }
        } atEnd: {
            if !batch.isEmpty { try body(.tuples(batch)) }
        }
        guard assembler?.isInsideRow != true else {
            throw PostgresError(.protocolViolation, "the chunked COPY ended inside a row", statement: select)
        }
        guard decoder.sawTrailer else {
            throw PostgresError(.protocolViolation, "the binary COPY ended without its trailer", statement: select)
        }
    }

    /// What `streamCopyRows` hands over, in the source's order.
    public enum CopyRows: Sendable {
        /// Rows as they came, undecoded.
        case tuples(CopyRowBatch)
        /// A row with a value larger than a chunk, assembled and decoded.
        case assembled(PostgresRow)
    }

    /// The fields a chunked stream adds after the source's columns: the part number, then each bytea's length (int4).
    private static func partFields(byteaCount: Int) -> ([PostgresColumn], [ValueFormat]) {
        let int4 = PostgresType(oid: 23, name: "int4")
        let columns = [PostgresColumn(name: "etl_part", type: int4)]
            + (0..<byteaCount).map { PostgresColumn(name: "etl_length\($0)", type: int4) }
        return (columns, Array(repeating: .int32, count: 1 + byteaCount))
    }

    /// The COPY statement for `select` (wrapped when `chunking`), with the session set to plan it as the statement alone
    /// would be planned (see ChunkedPlanOverrides); call the returned closure afterwards to put the settings back.
    /// Session-level settings, so this works outside a transaction too; inside one, a failed statement rolls them back.
    private func prepareCopy(_ select: String, formats: [ValueFormat], chunking: ByteaChunking?) throws -> (String, () -> Void) {
        let streamed = chunking.map { $0.wrappedStatement(select, columns: formats) } ?? select
        let (overrides, previous) = chunking != nil ? try chunkedPlanOverrides(select) : (.none, [:])
        for setting in overrides.settings { try setConfig(setting.name, setting.value) }
        let restore = { [self] in
            if PQstatus(raw) == CONNECTION_OK, PQtransactionStatus(raw) != PQTRANS_INERROR {
                for setting in overrides.settings { if let value = previous[setting.name] { try? setConfig(setting.name, value) } }
            }
        }
        return ("COPY (\(streamed)) TO STDOUT (FORMAT binary)", restore)
    }

    /// The result columns of `select` and how their values decode; refuses parameters (COPY takes none) and types
    /// without a decoder before any row is read.
    private func describeForCopy(_ select: String) throws(PostgresError) -> ([PostgresColumn], [ValueFormat]) {
        let description = try describeStatement(select)
        guard description.parameters.isEmpty else {
            throw PostgresError(
                .misuse, "a streamed statement cannot take parameters ($1 …); put them in as escaped literals",
                statement: select)
        }
        return (description.columns, try valueFormats(description.columns, statement: select))
    }

    /// Sends `copy` (a COPY … TO STDOUT) and hands each CopyData message to `message` (which sets its flag as soon as
    /// it takes ownership of the buffer, to be freed with `PQfreemem`; otherwise it is freed here), then calls `atEnd` once the
    /// last message arrived and checks the statement's outcome. Errors name `select`, the user's statement: the COPY
    /// around it (and a chunking wrapper) is etl's, not what to fix. If a handler throws, the COPY is cancelled and
    /// the error rethrown.
    private func copyOut(
        _ copy: String, statement select: String, message: (UnsafeMutablePointer<CChar>, Int, inout Bool) throws -> Void,
        atEnd: () throws -> Void
    ) throws {
        try ensureReady(for: copy, parameters: [])
        guard PQsendQuery(raw, copy) == 1 else { throw connectionError(statement: copy) }

        isStreaming = true
        defer { isStreaming = false }
        guard let first = ResultHandle(taking: PQgetResult(raw)) else { throw connectionError(statement: copy) }
        guard first.status == PGRES_COPY_OUT else {
            // The statement failed before sending any row (e.g. a syntax error in the user's query).
            var error = first.error(kind: PQstatus(raw) == CONNECTION_BAD ? .connectionLost : .queryFailed, statement: select)
            if error.kind == .connectionLost { error.target = target }
            drainResults()
            throw error
        }
        do {
            while true {
                var buffer: UnsafeMutablePointer<CChar>?
                let length = PQgetCopyData(raw, &buffer, 0)
                if length == -1 { break }  // the COPY is over; its outcome follows as a result
                guard length > 0, let buffer else {
                    throw connectionError(statement: copy)
                }
                var taken = false
                defer { if !taken { PQfreemem(buffer) } }
                try message(buffer, Int(length), &taken)
            }
            try atEnd()
        } catch {
            abandonCopyStream()
            isStreaming = false
            throw error
        }

        var serverError: PostgresError?
        while let result = ResultHandle(taking: PQgetResult(raw)) {
            let status = result.status
            if status != PGRES_COMMAND_OK && serverError == nil {
                serverError = result.error(kind: .queryFailed, statement: select)
            }
        }
        if var serverError {
            if PQstatus(raw) == CONNECTION_BAD {
                serverError.kind = .connectionLost
                serverError.target = target
            }
            throw serverError
        }
        if PQstatus(raw) == CONNECTION_BAD { throw connectionError(statement: copy) }
    }

    /// Stops a running COPY: ask the server to cancel, then read and drop what it already sent until the statement
    /// is over, leaving the connection idle (a lost cancel race only means reading the rest).
    private func abandonCopyStream() {
        if let cancel = PQgetCancel(raw) {
            defer { PQfreeCancel(cancel) }
            var message = [CChar](repeating: 0, count: 256)
            _ = PQcancel(cancel, &message, Int32(message.count))
        }
        var buffer: UnsafeMutablePointer<CChar>?
        while PQgetCopyData(raw, &buffer, 0) > 0 {
            PQfreemem(buffer)
            buffer = nil
        }
        drainResults()
    }
}

/// Hands out `bytea` values as slices of one CopyData message: the first slice adopts the message, which is freed (with
/// `PQfreemem`) when the last slice goes. Once adopted, the message is no longer the caller's to free.
private struct AdoptedMessage {
    let buffer: UnsafeMutablePointer<CChar>
    let length: Int
    private var whole: PostgresBytes?

    init(buffer: UnsafeMutablePointer<CChar>, length: Int) {
        self.buffer = buffer
        self.length = length
    }

    var isAdopted: Bool { whole != nil }

    /// `field`, a range of the message's bytes, as a value sharing them.
    mutating func slice(_ field: UnsafeRawBufferPointer) -> PostgresBytes {
        let whole = self.whole ?? PostgresBytes(adopting: buffer, count: length) { PQfreemem($0) }
        self.whole = whole
        let start = field.baseAddress.map { $0 - UnsafeRawPointer(buffer) } ?? 0
        return whole.slice(start..<(start + field.count))
    }
}

/// Parses the binary COPY stream, one CopyData message at a time (the server sends one message per row; the
/// file header arrives in front of the first row, the trailer as a message of its own). Pure: no libpq calls,
/// so it is tested on bytes.
struct CopyRowDecoder {
    static let signature: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00]

    let columns: [PostgresColumn]
    let formats: [ValueFormat]
    let statement: String
    private(set) var sawHeader = false
    private(set) var sawTrailer = false

    init(columns: [PostgresColumn], formats: [ValueFormat], statement: String) {
        self.columns = columns
        self.formats = formats
        self.statement = statement
    }

    /// The row in `message`, or nil for the trailer. A bytea value is `bytea(field)` of its bytes within `message`
    /// (by default a copy).
    mutating func decode(
        _ message: UnsafeRawBufferPointer,
        bytea: (UnsafeRawBufferPointer) -> PostgresBytes = PostgresBytes.init(copying:)
    ) throws(PostgresError) -> PostgresRow? {
        try decodeValues(message, bytea: bytea).map { PostgresRow(columns: columns, values: $0) }
    }

    /// `decode`'s values without the row around them (a chunked stream's parts are not rows of these columns).
    mutating func decodeValues(
        _ message: UnsafeRawBufferPointer,
        bytea: (UnsafeRawBufferPointer) -> PostgresBytes = PostgresBytes.init(copying:)
    ) throws(PostgresError) -> [PostgresValue]? {
        guard let tuple = try tuple(in: message) else { return nil }
        return try decodeTuple(tuple, bytea: bytea)
    }

    /// The row's tuple in `message` with its framing checked (the field count, every length within the message,
    /// nothing left over), values not decoded; nil for the trailer. What `CopyRowBatch` keeps.
    mutating func frame(_ message: UnsafeRawBufferPointer) throws(PostgresError) -> UnsafeRawBufferPointer? {
        guard let tuple = try tuple(in: message) else { return nil }
        var reader = BinaryReader(tuple)
        let fieldCount = Int(try reader.read(Int16.self))
        guard fieldCount == columns.count else {
            throw malformed("a row has \(fieldCount) fields, the statement describes \(columns.count) columns")
        }
        for _ in 0..<fieldCount {
            let length = Int(try reader.read(Int32.self))
            if length == -1 { continue }
            guard length >= 0 else { throw malformed("field length \(length)") }
            _ = try reader.readBytes(length)
        }
        guard reader.remaining == 0 else { throw malformed("\(reader.remaining) bytes after a row") }
        return tuple
    }

    /// The tuple (field count and fields) of the row in `message`, after the file header in front of the first row;
    /// nil for the trailer.
    private mutating func tuple(in message: UnsafeRawBufferPointer) throws(PostgresError) -> UnsafeRawBufferPointer? {
        var reader = BinaryReader(message)
        if !sawHeader {
            let signature = try reader.readBytes(Self.signature.count)
            guard signature.elementsEqual(Self.signature) else { throw malformed("the binary COPY signature is missing") }
            let flags = try reader.read(UInt32.self)
            // Bit 16 says OIDs are included; the lower half is critical (unknown means we cannot parse).
            guard flags & 0xFFFF == 0, flags & (1 << 16) == 0 else { throw malformed("binary COPY flags \(flags)") }
            let extensionLength = Int(try reader.read(UInt32.self))
            _ = try reader.readBytes(extensionLength)
            sawHeader = true
        }
        guard !sawTrailer else { throw malformed("data after the binary COPY trailer") }
        let tuple = UnsafeRawBufferPointer(rebasing: message[(message.count - reader.remaining)...])
        if try reader.read(Int16.self) == -1 {
            sawTrailer = true
            try reader.expectEnd()
            return nil
        }
        return tuple
    }

    /// The values of one tuple (as `frame` returns it).
    func decodeTuple(
        _ tuple: UnsafeRawBufferPointer,
        bytea: (UnsafeRawBufferPointer) -> PostgresBytes = PostgresBytes.init(copying:)
    ) throws(PostgresError) -> [PostgresValue] {
        var reader = BinaryReader(tuple)
        let fieldCount = Int(try reader.read(Int16.self))
        guard fieldCount == columns.count else {
            throw malformed("a row has \(fieldCount) fields, the statement describes \(columns.count) columns")
        }
        var values: [PostgresValue] = []
        values.reserveCapacity(fieldCount)
        for index in 0..<fieldCount {
            let length = Int(try reader.read(Int32.self))
            if length == -1 {
                values.append(.null)
                continue
            }
            guard length >= 0 else { throw malformed("field length \(length)") }
            let bytes = try reader.readBytes(length)
            do {
                values.append(try PostgresValue.decode(bytes, as: formats[index], bytea: bytea))
            } catch {
                throw Self.named(error, column: columns[index], statement: statement)
            }
        }
        // One message per row: anything left over means the stream is not what we think it is.
        guard reader.remaining == 0 else { throw malformed("\(reader.remaining) bytes after a row") }
        return values
    }

    /// A value's decoding error, saying which column and statement it came from.
    static func named(_ error: PostgresError, column: PostgresColumn, statement: String) -> PostgresError {
        var error = error
        error.context = "column \"\(column.name)\" (\(column.type))"
        error.statement = statement
        return error
    }

    private func malformed(_ what: String) -> PostgresError {
        PostgresError(.protocolViolation, "unexpected binary COPY data: \(what)", statement: statement)
    }
}
