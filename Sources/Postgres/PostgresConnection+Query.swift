internal import CLibPQ

/// What `describe` learns about a statement without running it.
public struct PostgresStatementDescription: Sendable, Hashable {
    /// The types the server inferred for $1, $2, …
    public var parameters: [PostgresType]
    public var columns: [PostgresColumn]
}

extension PostgresConnection {
    /// Runs one statement and returns all its rows in memory; for small results (use `stream` for large ones).
    ///
    /// Parameters are sent as text and parsed by the server as the type it infers for `$n` (add a cast such as
    /// `$1::timestamptz` where inference is ambiguous); nil is SQL NULL. Results come back in binary format and are
    /// decoded strictly. A column of a type ``PostgresValue`` cannot hold fails the whole call with
    /// `unsupportedType`, even when there are no rows, so that a query works or fails regardless of the data.
    public func query(_ sql: String, _ parameters: [String?] = []) throws(PostgresError) -> PostgresResultSet {
        let result = try run(sql, parameters)
        let columns = columns(of: result)
        let formats = try valueFormats(columns, statement: sql)
        var rows: [PostgresRow] = []
        rows.reserveCapacity(result.rowCount)
        for index in 0..<result.rowCount {
            rows.append(try decodeRow(result, index, columns: columns, formats: formats, statement: sql))
        }
        return PostgresResultSet(columns: columns, rows: rows)
    }

    /// Runs a command (DDL, INSERT/UPDATE/DELETE, SET, BEGIN/COMMIT …); any rows it returns are discarded.
    public func execute(_ sql: String, _ parameters: [String?] = []) throws(PostgresError) {
        _ = try run(sql, parameters)
    }

    /// The result columns of `sql`, found by preparing it as the unnamed statement without executing it.
    ///
    /// `parameterCount` is how many parameters the caller will bind; a statement using a different number of
    /// `$n` fails with `misuse`, since running it would fail the same way. Unsupported column types are reported
    /// (see ``PostgresType/isSupported``), not thrown, so a validator can list them all.
    public func describe(_ sql: String, parameterCount: Int = 0) throws(PostgresError) -> [PostgresColumn] {
        let description = try describeStatement(sql)
        guard description.parameters.count == parameterCount else {
            throw PostgresError(
                .misuse,
                "the statement uses \(description.parameters.count) parameter(s) but \(parameterCount) will be bound",
                statement: sql)
        }
        return description.columns
    }

    /// Parameter and column types of `sql`, without executing it.
    public func describeStatement(_ sql: String) throws(PostgresError) -> PostgresStatementDescription {
        try ensureReady(for: sql, parameters: [])
        // Zero declared parameters: the server infers the number and types of $n from the statement itself.
        _ = try checked(PQprepare(raw, "", sql, 0, nil), statement: sql)
        let described = try checked(PQdescribePrepared(raw, ""), statement: sql)
        let parameterOIDs = (0..<Int(PQnparams(described.raw))).map { UInt32(PQparamtype(described.raw, Int32($0))) }
        let names = typeNames(for: parameterOIDs + (0..<described.columnCount).map { described.columnTypeOID($0) })
        return PostgresStatementDescription(
            parameters: parameterOIDs.map { PostgresType(oid: $0, name: names[$0] ?? "oid \($0)") },
            columns: (0..<described.columnCount).map { index in
                let oid = described.columnTypeOID(index)
                return PostgresColumn(
                    name: described.columnName(index), type: PostgresType(oid: oid, name: names[oid] ?? "oid \(oid)"))
            })
    }

    /// Takes the session-level advisory lock `key` if no other session holds it; never waits.
    /// The lock lasts until `advisoryUnlock` or the end of the session (so a crashed run releases it).
    public func tryAdvisoryLock(_ key: Int64) throws(PostgresError) -> Bool {
        try singleBool("SELECT pg_catalog.pg_try_advisory_lock($1::int8)", key)
    }

    /// Releases one hold of the session-level advisory lock `key`; returns false if this session did not hold it.
    @discardableResult
    public func advisoryUnlock(_ key: Int64) throws(PostgresError) -> Bool {
        try singleBool("SELECT pg_catalog.pg_advisory_unlock($1::int8)", key)
    }

    private func singleBool(_ sql: String, _ key: Int64) throws(PostgresError) -> Bool {
        let result = try query(sql, [String(key)])
        guard result.rows.count == 1, case .bool(let value) = result.rows[0].values[0] else {
            throw PostgresError(.protocolViolation, "expected one boolean from \(sql)")
        }
        return value
    }

    // MARK: Shared machinery

    /// Fails early when the connection cannot take a statement now, with a clearer message than libpq's.
    func ensureReady(for sql: String, parameters: [String?]) throws(PostgresError) {
        guard !isStreaming else {
            throw PostgresError(
                .misuse, "this connection is busy streaming rows; use a second connection inside a stream body",
                statement: sql)
        }
        guard PQstatus(raw) == CONNECTION_OK else {
            throw PostgresError(.connectionLost, "the connection was already lost", statement: sql, target: target)
        }
        // C strings end at NUL, so such text would silently be cut short; PostgreSQL text cannot hold NUL anyway.
        if sql.utf8.contains(0) {
            throw PostgresError(.misuse, "the statement contains a NUL character")
        }
        if let index = parameters.firstIndex(where: { $0?.utf8.contains(0) == true }) {
            throw PostgresError(
                .misuse, "parameter $\(index + 1) contains a NUL character, which PostgreSQL text cannot hold",
                statement: sql)
        }
    }

    /// Executes with text parameters and binary results, and returns the successful result or throws.
    func run(_ sql: String, _ parameters: [String?]) throws(PostgresError) -> ResultHandle {
        try ensureReady(for: sql, parameters: parameters)
        let raw = self.raw
        let result = withCStrings(parameters) { values in
            PQexecParams(raw, sql, Int32(parameters.count), nil, values, nil, nil, 1)
        }
        return try checked(result, statement: sql)
    }

    /// Takes ownership of what PQexecParams & co. returned and turns it into either a successful result or an
    /// error, leaving the connection idle either way.
    func checked(_ pointer: OpaquePointer?, statement: String) throws(PostgresError) -> ResultHandle {
        guard let result = ResultHandle(taking: pointer) else {
            throw connectionError(statement: statement)
        }
        let status = result.status
        if status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK || status == PGRES_EMPTY_QUERY {
            return result
        }
        if status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH {
            abandonCopy(status)
            drainResults()
            throw PostgresError(.misuse, "COPY to or from the client is not supported here", statement: statement)
        }
        let kind: PostgresError.Kind =
            PQstatus(raw) == CONNECTION_BAD ? .connectionLost
            : status == PGRES_BAD_RESPONSE ? .protocolViolation
            : .queryFailed
        var error = result.error(kind: kind, statement: statement)
        if kind == .connectionLost { error.target = target }
        throw error
    }

    /// The error libpq recorded on the connection itself (no result was produced, e.g. the send failed).
    func connectionError(statement: String?) -> PostgresError {
        let message = String(cString: PQerrorMessage(raw)).trimmingTrailingNewlines()
        let lost = PQstatus(raw) == CONNECTION_BAD
        return PostgresError(
            lost ? .connectionLost : .queryFailed, message.isEmpty ? "libpq returned no result" : message,
            statement: statement, target: lost ? target : nil)
    }

    /// Ends a COPY the statement started, so that the connection returns to accepting statements.
    func abandonCopy(_ status: ExecStatusType) {
        if status == PGRES_COPY_IN {
            _ = PQputCopyEnd(raw, "etl does not send COPY data")
        } else if status == PGRES_COPY_OUT {
            var buffer: UnsafeMutablePointer<CChar>?
            while PQgetCopyData(raw, &buffer, 0) > 0 {
                PQfreemem(buffer)
                buffer = nil
            }
        }
        // COPY BOTH only exists on replication connections, which etl never opens; libpq has no way out of it
        // short of closing the connection, which the caller's error handling does.
    }

    /// Reads and discards results until libpq reports the statement finished, so the connection is idle.
    func drainResults() {
        while let result = ResultHandle(taking: PQgetResult(raw)) {
            let status = result.status
            if status == PGRES_COPY_IN || status == PGRES_COPY_OUT {
                abandonCopy(status)
            } else if status == PGRES_COPY_BOTH {
                return
            }
        }
    }

    /// The result's columns with their type names.
    func columns(of result: borrowing ResultHandle) -> [PostgresColumn] {
        let oids = (0..<result.columnCount).map { result.columnTypeOID($0) }
        let names = typeNames(for: oids)
        return (0..<result.columnCount).map { index in
            PostgresColumn(
                name: result.columnName(index),
                type: PostgresType(oid: oids[index], name: names[oids[index]] ?? "oid \(oids[index])"))
        }
    }

    func valueFormats(_ columns: [PostgresColumn], statement: String) throws(PostgresError) -> [ValueFormat] {
        var formats: [ValueFormat] = []
        for column in columns {
            guard let format = ValueFormat(column.type) else {
                throw PostgresError(
                    .unsupportedType, "column \"\(column.name)\" has type \(column.type), which etl cannot decode",
                    statement: statement)
            }
            formats.append(format)
        }
        return formats
    }

    func decodeRow(
        _ result: borrowing ResultHandle, _ row: Int, columns: [PostgresColumn], formats: [ValueFormat],
        statement: String
    ) throws(PostgresError) -> PostgresRow {
        var values: [PostgresValue] = []
        values.reserveCapacity(columns.count)
        for column in 0..<columns.count {
            if result.isNull(row: row, column: column) {
                values.append(.null)
                continue
            }
            guard result.isBinary(column: column) else {
                throw PostgresError(.protocolViolation, "column \"\(columns[column].name)\" arrived in text format")
            }
            do {
                values.append(try PostgresValue.decode(result.bytes(row: row, column: column), as: formats[column]))
            } catch {
                var error = error
                error.context = "column \"\(columns[column].name)\" (\(columns[column].type))"
                error.statement = statement
                throw error
            }
        }
        return PostgresRow(columns: columns, values: values)
    }

    /// Names for `oids`: the built-in table first, then the cache, then one catalog query for the rest.
    ///
    /// Only called while the connection is idle. If the lookup itself fails (e.g. inside an aborted transaction)
    /// the types stay unnamed ("oid N"), which only affects how they are shown.
    func typeNames(for oids: [UInt32]) -> [UInt32: String] {
        var names: [UInt32: String] = [:]
        var missing: Set<UInt32> = []
        for oid in oids {
            if let name = PostgresType.builtinNames[oid] ?? typeNameCache[oid] {
                names[oid] = name
            } else {
                missing.insert(oid)
            }
        }
        guard !missing.isEmpty, !isStreaming, PQstatus(raw) == CONNECTION_OK else { return names }
        let list = "{" + missing.sorted().map(String.init).joined(separator: ",") + "}"
        loadTypeNames("SELECT oid::int8, typname::text FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])", list)
        for oid in missing { names[oid] = typeNameCache[oid] }
        return names
    }

    /// Learns the OIDs of supported extension types (citext) ahead of a stream, which cannot stop mid-result to
    /// look them up. Done once per connection.
    func loadExtensionTypes() {
        guard !extensionTypesLoaded else { return }
        extensionTypesLoaded = loadTypeNames(
            "SELECT oid::int8, typname::text FROM pg_catalog.pg_type WHERE typname = ANY($1::text[])", "{citext}")
    }

    @discardableResult
    private func loadTypeNames(_ sql: String, _ parameter: String) -> Bool {
        guard let result = try? query(sql, [parameter]) else { return false }
        for row in result.rows {
            if case .int64(let oid) = row.values[0], case .text(let name) = row.values[1],
               let oid = UInt32(exactly: oid) {
                typeNameCache[oid] = name
            }
        }
        return true
    }
}
