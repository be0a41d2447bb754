import Foundation
import Postgres

/// Streams the source on its own thread into the parallel map, in batches of rows; records the failure, if any, for
/// the writer side.
///
/// The wrapped query runs as a binary COPY (see `PostgresConnection.streamBatches`), with the cursor value inlined as
/// a literal escaped by libpq, since COPY takes no parameters: one protocol message per row and no per-row result
/// object. A statement that is not the wrapper's exact shape streams in libpq's single-row mode instead, with the
/// parameter bound: slower, equally correct.
final class SourceReader: @unchecked Sendable {
    private let connection: PostgresConnection
    private let sql: String
    private let parameters: [String?]
    private let map: OrderedParallelMap<PostgresRow, ProcessedRow>
    private let limits: RowBatchLimits
    private let done = DispatchSemaphore(value: 0)
    private(set) var failure: Error?

    init(connection: PostgresConnection, sql: String, parameters: [String?], map: OrderedParallelMap<PostgresRow, ProcessedRow>,
         limits: RowBatchLimits = RowBatchLimits()) {
        self.connection = connection
        self.sql = sql
        self.parameters = parameters
        self.map = map
        self.limits = limits
    }

    func start() {
        let thread = Thread { [self] in
            do {
                try read()
            } catch is OrderedParallelMap<PostgresRow, ProcessedRow>.Cancelled {
                // The writer side failed and reports its own error.
            } catch {
                failure = error
                map.cancel()
            }
            map.finish()
            done.signal()
        }
        thread.name = "etl-extract"
        thread.start()
    }

    func wait() { done.wait(); done.signal() }

    private func read() throws {
        if let copySQL = try inlinedSQL() {
            try connection.streamBatches(copySQL, limits: limits) { batch in try map.submit(batch: batch) }
            return
        }
        var batch: [PostgresRow] = []
        var bytes = 0
        try connection.stream(sql, parameters) { row in
            batch.append(row)
            bytes += row.values.reduce(0) { $0 + $1.approximateSize }
            if limits.isFull(rows: batch.count, bytes: bytes) {
                let full = batch
                batch.removeAll(keepingCapacity: true)
                bytes = 0
                try map.submit(batch: full)
            }
        }
        try map.submit(batch: batch)
    }

    /// The statement with its parameter inlined, or nil when it must be bound (single-row mode).
    private func inlinedSQL() throws -> String? {
        switch parameters.count {
        case 0: return sql
        case 1:
            guard let value = parameters[0] else { return nil }
            return SourceQuery.inliningCursor(sql, literal: try connection.escapeLiteral(value))
        default: return nil
        }
    }
}
