internal import CLibPQ

extension PostgresConnection {
    /// Runs `sql` and hands its rows to `body` one at a time, holding only the current row in memory.
    ///
    /// Uses libpq's single-row mode with binary results. If `body` throws, the query is cancelled on the server
    /// and the rest of its output discarded, so the connection is usable again, and `body`'s error is rethrown.
    /// A server error after some rows (e.g. division by zero in row 5000) throws `PostgresError` after those rows
    /// were delivered. Column types are checked before the first row is delivered. Calling another method of this
    /// connection from inside `body` fails with `misuse`: the connection is busy until the stream ends.
    ///
    /// Inside a transaction, a stream ended by `body` leaves the transaction aborted (the cancel is an error in
    /// it); roll back before going on.
    public func stream(_ sql: String, _ parameters: [String?] = [], _ body: (PostgresRow) throws -> Void) throws {
        try ensureReady(for: sql, parameters: parameters)
        loadExtensionTypes()
        try send(sql, parameters)

        isStreaming = true
        defer { isStreaming = false }
        var layout: (columns: [PostgresColumn], formats: [ValueFormat])?
        var serverError: PostgresError?

        while let result = ResultHandle(taking: PQgetResult(raw)) {
            let status = result.status
            if status == PGRES_SINGLE_TUPLE || status == PGRES_TUPLES_OK {
                // A query returning no rows still ends with TUPLES_OK carrying the columns, so types are checked
                // for every query, not only those that happen to return data.
                guard serverError == nil else { continue }
                do {
                    if layout == nil {
                        let columns = columns(of: result)
                        layout = (columns, try valueFormats(columns, statement: sql))
                    }
                    if status == PGRES_SINGLE_TUPLE, let (columns, formats) = layout {
                        try body(try decodeRow(result, 0, columns: columns, formats: formats, statement: sql))
                    }
                } catch {
                    abandonStream()
                    isStreaming = false
                    if layout == nil {
                        // Type names could not be looked up while the result was arriving; now that the connection
                        // is idle again, check once more so the error names the type.
                        do { _ = try valueFormats(columns(of: result), statement: sql) } catch { throw error }
                    }
                    throw error
                }
            } else if status == PGRES_COMMAND_OK || status == PGRES_EMPTY_QUERY {
                continue
            } else if status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH {
                abandonCopy(status)
                if serverError == nil {
                    serverError = PostgresError(.misuse, "COPY to or from the client is not supported here", statement: sql)
                }
                if status == PGRES_COPY_BOTH { break }
            } else {
                // Keep reading until libpq says the statement is over; only then is the connection idle again.
                serverError = serverError ?? result.error(kind: .queryFailed, statement: sql)
            }
        }
        if var serverError {
            // A terminated backend sends its error before closing, so libpq only sees the closed socket on the
            // read after it: whether the session survived is known only now.
            if PQstatus(raw) == CONNECTION_BAD {
                serverError.kind = .connectionLost
                serverError.target = target
            }
            throw serverError
        }
    }

    private func send(_ sql: String, _ parameters: [String?]) throws(PostgresError) {
        let raw = self.raw
        let sent = withCStrings(parameters) { values in
            PQsendQueryParams(raw, sql, Int32(parameters.count), nil, values, nil, nil, 1)
        }
        guard sent == 1 else { throw connectionError(statement: sql) }
        guard PQsetSingleRowMode(raw) == 1 else {
            // Only possible if libpq already started reading the result, which nothing in between could cause.
            drainResults()
            throw PostgresError(.protocolViolation, "libpq refused single-row mode", statement: sql)
        }
    }

    /// Stops a running stream: ask the server to cancel, then read and drop whatever it already sent.
    ///
    /// The cancel arrives on a separate connection and may lose the race with the query finishing; either way
    /// the drain ends at the statement's end, leaving the connection idle. If the cancel cannot be delivered the
    /// drain reads the remaining rows instead, which is slower but equally correct.
    private func abandonStream() {
        if let cancel = PQgetCancel(raw) {
            defer { PQfreeCancel(cancel) }
            var message = [CChar](repeating: 0, count: 256)
            _ = PQcancel(cancel, &message, Int32(message.count))
        }
        drainResults()
    }
}
