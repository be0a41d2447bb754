import Foundation
import Postgres

/// Streams the source on its own thread into the parallel map; records the failure, if any, for the writer side.
final class SourceReader: @unchecked Sendable {
    private let connection: PostgresConnection
    private let sql: String
    private let parameters: [String?]
    private let map: OrderedParallelMap<PostgresRow, ProcessedRow>
    private let done = DispatchSemaphore(value: 0)
    private(set) var failure: Error?

    init(connection: PostgresConnection, sql: String, parameters: [String?], map: OrderedParallelMap<PostgresRow, ProcessedRow>) {
        self.connection = connection
        self.sql = sql
        self.parameters = parameters
        self.map = map
    }

    func start() {
        let thread = Thread { [self] in
            do {
                try connection.stream(sql, parameters) { row in try map.submit(row) }
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
}
