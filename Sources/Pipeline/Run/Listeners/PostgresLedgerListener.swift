import Dataset
import Foundation
import Postgres

/// Inserts each run's ledger record (the same `RunRecord` as `runs.jsonl`) as one row of a PostgreSQL table, for
/// dashboards and alerts that query SQL. The table is created if missing. Only the database of `ledger.connection` is
/// touched, never the source unless that string names it. Like the file ledger it never fails the run: a database
/// that is down or refuses the insert is a warning, and the run's own outcome and exit code stand.
public final class PostgresLedgerListener: RunListener, @unchecked Sendable {
    private let config: LedgerConfig
    private let identity: LedgerListener.Identity
    private let exitCode: @Sendable (FailureCategory) -> Int32
    private let warn: @Sendable (String) -> Void
    private let recorder = RunTallyRecorder()

    public init(_ config: LedgerConfig, identity: LedgerListener.Identity, exitCode: @escaping @Sendable (FailureCategory) -> Int32,
                warn: @escaping @Sendable (String) -> Void) {
        self.config = config
        self.identity = identity
        self.exitCode = exitCode
        self.warn = warn
    }

    public func handle(_ event: RunEvent) {
        guard let finished = recorder.record(event) else { return }
        let record = LedgerListener.record(finished, identity: identity, host: LedgerListener.hostName, pid: getpid(), exitCode: exitCode)
        do {
            let connection = try PostgresConnection(conninfo: Self.bounded(config.connection))
            try connection.execute(Self.createSQL(table: config.table))
            try addMissingColumns(connection)
            try connection.execute(Self.insertSQL(table: config.table), Self.parameters(record))
        } catch {
            warn("etl: warning: the run was not recorded in the PostgreSQL ledger table \(config.table): \(LedgerListener.scrub("\(error)", connection: config.connection))")
        }
    }

    /// The connection string with a connect timeout (10 s) unless it sets one: libpq waits for ever by default, and an
    /// unreachable ledger host must not hold the end of a nightly run for minutes.
    static func bounded(_ conninfo: String) -> String {
        guard !conninfo.contains("connect_timeout") else { return conninfo }
        if conninfo.hasPrefix("postgresql://") || conninfo.hasPrefix("postgres://") {
            return conninfo + (conninfo.contains("?") ? "&" : "?") + "connect_timeout=10"
        }
        return conninfo + (conninfo.isEmpty ? "" : " ") + "connect_timeout=10"
    }

    /// The table name as SQL: each part of `schema.table` quoted.
    static func quotedTable(_ table: String) -> String {
        table.split(separator: ".").map { quoteIdentifier(String($0)) }.joined(separator: ".")
    }

    /// One column per field of `RunRecord`, under the same names as in runs.jsonl.
    static let columns: [(name: String, type: String)] = [
        ("run_id", "text"), ("pipeline", "text NOT NULL"), ("dataset", "text NOT NULL"), ("config_sha256", "text NOT NULL"),
        ("host", "text NOT NULL"), ("pid", "integer NOT NULL"), ("started_at", "timestamptz NOT NULL"),
        ("ended_at", "timestamptz NOT NULL"), ("duration_seconds", "double precision NOT NULL"), ("outcome", "text NOT NULL"),
        ("exit_code", "integer NOT NULL"), ("failure", "text"), ("rows_read", "bigint NOT NULL"), ("rows_fetched", "bigint"),
        ("bytes_fetched", "bigint"), ("samples_written", "bigint NOT NULL"), ("quarantined", "bigint NOT NULL"),
        ("quarantined_by_reason", "jsonb NOT NULL"), ("bytes_read", "bigint NOT NULL"), ("bytes_written", "bigint NOT NULL"),
        ("cursor_from", "text"), ("cursor_to", "text"), ("parent", "text"), ("version_published", "text"), ("error", "text"),
        ("deduplicated", "bigint"),
    ]

    /// Columns a later etl added: a table an older etl created lacks them, and gets them before the first insert.
    static let laterColumns: Set<String> = ["deduplicated"]

    /// Adds the later columns a table lacks. Looked up first, so an up-to-date table is never locked by ALTER TABLE
    /// (which would wait behind a dashboard's long query on the table).
    private func addMissingColumns(_ connection: PostgresConnection) throws {
        let existing = try connection.query(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            [Self.quotedTable(config.table)])
        let names = Set(existing.rows.compactMap { row -> String? in if case .text(let name) = row.values[0] { name } else { nil } })
        for column in Self.columns where Self.laterColumns.contains(column.name) && !names.contains(column.name) {
            try connection.execute("ALTER TABLE \(Self.quotedTable(config.table)) ADD COLUMN IF NOT EXISTS \(column.name) \(column.type)")
        }
    }

    static func createSQL(table: String) -> String {
        "CREATE TABLE IF NOT EXISTS \(quotedTable(table)) (\(columns.map { "\($0.name) \($0.type)" }.joined(separator: ", ")))"
    }

    static func insertSQL(table: String) -> String {
        let values = columns.enumerated().map { index, column in
            "$\(index + 1)::\(column.type.split(separator: " ").first == "double" ? "float8" : String(column.type.split(separator: " ")[0]))"
        }
        return "INSERT INTO \(quotedTable(table)) (\(columns.map(\.name).joined(separator: ", "))) VALUES (\(values.joined(separator: ", ")))"
    }

    /// The record's fields as text parameters, in `columns` order.
    static func parameters(_ record: RunRecord) -> [String?] {
        let reasons = (try? JSONSerialization.data(withJSONObject: record.quarantinedByReason, options: [.sortedKeys]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return [
            record.runId, record.pipeline, record.dataset, record.configSha256, record.host, String(record.pid),
            record.startedAt, record.endedAt, String(record.durationSeconds), record.outcome.rawValue, String(record.exitCode),
            record.failure, String(record.rowsRead), record.rowsFetched.map(String.init), record.bytesFetched.map(String.init),
            String(record.samplesWritten), String(record.quarantined), reasons, String(record.bytesRead), String(record.bytesWritten),
            record.cursorFrom, record.cursorTo, record.parent, record.versionPublished, record.error,
            record.deduplicated.map(String.init),
        ]
    }
}
