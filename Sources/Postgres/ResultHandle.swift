internal import CLibPQ

/// The single owner of one `PGresult`. Being `~Copyable`, it cannot be duplicated, so `PQclear` runs exactly once,
/// whichever way the scope holding it is left.
struct ResultHandle: ~Copyable {
    let raw: OpaquePointer

    /// Takes ownership of what a libpq call returned; nil when libpq returned no result.
    init?(taking raw: OpaquePointer?) {
        guard let raw else { return nil }
        self.raw = raw
    }

    deinit { PQclear(raw) }

    var status: ExecStatusType { PQresultStatus(raw) }
    var rowCount: Int { Int(PQntuples(raw)) }
    var columnCount: Int { Int(PQnfields(raw)) }

    func field(_ code: UInt8) -> String? {
        guard let value = PQresultErrorField(raw, Int32(code)) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    /// The server's error, split into its fields (SQLSTATE, message, detail, hint, position, context).
    func error(kind: PostgresError.Kind, statement: String?) -> PostgresError {
        let sqlstate = field(UInt8(ascii: "C"))
        let message = field(UInt8(ascii: "M"))
            ?? String(cString: PQresultErrorMessage(raw)).trimmingTrailingNewlines()
        return PostgresError(
            kind, message.isEmpty ? "unknown error (\(String(cString: PQresStatus(status))))" : message,
            sqlstate: sqlstate,
            detail: field(UInt8(ascii: "D")),
            hint: field(UInt8(ascii: "H")),
            position: field(UInt8(ascii: "P")).flatMap { Int($0) },
            context: field(UInt8(ascii: "W")),
            statement: statement)
    }

    func columnName(_ index: Int) -> String {
        String(cString: PQfname(raw, Int32(index)))
    }

    func columnTypeOID(_ index: Int) -> UInt32 {
        UInt32(PQftype(raw, Int32(index)))
    }

    func isBinary(column index: Int) -> Bool {
        PQfformat(raw, Int32(index)) == 1
    }

    func isNull(row: Int, column: Int) -> Bool {
        PQgetisnull(raw, Int32(row), Int32(column)) == 1
    }

    /// The value's bytes, valid only while this handle lives; decoders copy what they keep.
    func bytes(row: Int, column: Int) -> UnsafeRawBufferPointer {
        let length = Int(PQgetlength(raw, Int32(row), Int32(column)))
        guard let start = PQgetvalue(raw, Int32(row), Int32(column)), length > 0 else {
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawBufferPointer(start: start, count: length)
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var text = self
        while let last = text.last, last.isNewline { text.removeLast() }
        return text
    }
}
