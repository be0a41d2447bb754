import Foundation
import Postgres

/// Streams the source on its own thread into the parallel map, in batches of rows; records the failure, if any, for
/// the writer side. With `copyRows`, COPY rows go to the workers undecoded, for the direct encoder.
///
/// The wrapped query runs as a binary COPY (see `PostgresConnection.streamBatches`), with the cursor values (and a
/// re-read window's keys) inlined as literals escaped by libpq, since COPY takes no parameters: one protocol message
/// per row and no per-row result object, and a large bytea in chunks. A statement that is not the wrapper's exact
/// shape streams in libpq's single-row mode instead, with the parameters bound: slower, equally correct. Several
/// statements (the unpublished rows of the re-read window, then the rows after the previous cursor) are read one after
/// the other into the same map, in the order given.
final class SourceReader: @unchecked Sendable {
    /// One statement to stream and its bound parameters.
    struct Statement {
        var sql: String
        var parameters: [String?]
    }

    private let connection: PostgresConnection
    private let statements: [Statement]
    private let map: OrderedParallelMap<SourceBatch, SampleBatch>
    private let copyRows: Bool
    private let limits: RowBatchLimits
    /// Large values assembled and not yet freed: about one at a time past 64 MiB (see `LargeValueBudget`).
    private let largeValues: LargeValueBudget
    private let done = DispatchSemaphore(value: 0)
    private(set) var failure: Error?
    /// The rows this attempt fetched from the source: read after `wait`. A run resumed from a checkpoint fetches only
    /// what its checkpoint does not cover, which this shows. (Their size is counted by the workers, who decode them.)
    private(set) var rowsFetched = 0

    init(connection: PostgresConnection, statements: [Statement], map: OrderedParallelMap<SourceBatch, SampleBatch>,
         copyRows: Bool, limits: RowBatchLimits = RowBatchLimits()) {
        self.connection = connection
        self.statements = statements
        self.map = map
        self.copyRows = copyRows
        self.limits = limits
        largeValues = LargeValueBudget(limit: TestHooks.largeValueBudget, shouldStop: { [map] in map.isCancelled })
    }

    func start() {
        let thread = Thread { [self] in
            do {
                try read()
            } catch is OrderedParallelMap<SourceBatch, SampleBatch>.Cancelled {
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
        for statement in statements { try read(statement) }
    }

    private func read(_ statement: Statement) throws {
        if let copySQL = try inlinedSQL(statement) {
            if copyRows {
                try connection.streamCopyRows(copySQL, limits: limits, chunking: TestHooks.byteaChunking, budget: largeValues) { rows in
                    switch rows {
                    case .tuples(let batch): try hand(.copy(batch))
                    case .assembled(let row): try hand(.rows([row]))  // a large value comes alone, as on the row path
                    }
                }
            } else {
                try connection.streamBatches(copySQL, limits: limits, chunking: TestHooks.byteaChunking, budget: largeValues) { batch in
                    try hand(.rows(batch))
                }
            }
            return
        }
        var batch: [PostgresRow] = []
        var bytes = 0
        try connection.stream(statement.sql, statement.parameters) { row in
            batch.append(row)
            bytes += row.values.reduce(0) { $0 + $1.approximateSize }
            if limits.isFull(rows: batch.count, bytes: bytes) {
                let full = batch
                batch.removeAll(keepingCapacity: true)
                bytes = 0
                try hand(.rows(full))
            }
        }
        try hand(.rows(batch))
    }

    /// One batch to the workers (in one piece: a worker takes the whole batch).
    private func hand(_ batch: SourceBatch) throws {
        let count = batch.count
        guard count > 0 else { return }
        rowsFetched += count
        try map.submit(batch)
        TestHooks.pause(at: .extract, times: count)
    }

    /// The statement with its parameters inlined, or nil when they must be bound (single-row mode).
    private func inlinedSQL(_ statement: Statement) throws -> String? {
        if statement.parameters.isEmpty { return statement.sql }
        var literals: [String] = []
        for parameter in statement.parameters {
            guard let parameter else { return nil }
            literals.append(try connection.escapeLiteral(parameter))
        }
        return SourceQuery.inliningParameters(statement.sql, literals: literals)
    }
}
