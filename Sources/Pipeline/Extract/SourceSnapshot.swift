import Dataset
import Postgres

/// Opens the one transaction a run reads in — `REPEATABLE READ READ ONLY`: one consistent snapshot for every
/// statement, and a query that tries to write (a volatile function with a side effect) fails instead of changing the
/// production database — and records what a later run needs to find rows that commit after this one read.
enum SourceSnapshot {
    /// Call on an idle connection; leaves it inside the transaction (commit with `finish`).
    static func begin(on connection: PostgresConnection) throws -> DatasetManifest.SourceSnapshotRecord {
        // Before the snapshot: the start of the oldest open transaction. A transaction invisible to the snapshot is
        // either open now (so counted here) or starts later (after this look), so none started before this bound.
        let look = try visibility(on: connection)
        try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        // The first statement of a REPEATABLE READ transaction takes its snapshot: this one, so the snapshot recorded is
        // exactly the one every later statement of the run reads in.
        let taken = try connection.query("""
            SELECT pg_current_snapshot()::text, pg_snapshot_xmin(pg_current_snapshot())::text::int8,
                   pg_snapshot_xmax(pg_current_snapshot())::text::int8, (extract(epoch FROM clock_timestamp()) * 1000000)::int8
            """)
        let row = taken.rows.first?.values ?? []
        guard row.count == 4, case .text(let snapshot) = row[0], let xmin = row[1].int64, let xmax = row[2].int64, let at = row[3].int64 else {
            throw PostgresError(.protocolViolation, "unexpected answer to pg_current_snapshot()")
        }
        return .init(snapshot: snapshot, xmin: xmin, xmax: xmax, takenAt: at,
                     oldestTransactionStart: look.knowsOldest ? look.oldestStart : nil, standby: look.standby)
    }

    /// What this session can tell about the source's other transactions.
    struct Visibility {
        var standby: Bool
        /// The start of the oldest open transaction, or now if none is open (µs since 1970).
        var oldestStart: Int64?
        /// Sessions of other roles, whose state is hidden unless this role may read all statistics.
        var hiddenSessions: Int64
        var preparedTransactions: Int64
        /// Whether `oldestStart` bounds every open transaction: not on a standby (the writers are on the primary), not
        /// with hidden sessions, not with prepared transactions (they are in no session).
        var knowsOldest: Bool { !standby && hiddenSessions == 0 && preparedTransactions == 0 }
    }

    static func visibility(on connection: PostgresConnection) throws -> Visibility {
        let look = try connection.query("""
            SELECT pg_is_in_recovery(),
                   (extract(epoch FROM LEAST(
                        (SELECT min(xact_start) FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()),
                        clock_timestamp())) * 1000000)::int8,
                   (SELECT count(*) FROM pg_stat_activity
                     WHERE backend_type = 'client backend' AND state IS NULL AND pid <> pg_backend_pid())::int8,
                   (SELECT count(*) FROM pg_prepared_xacts)::int8
            """)
        let values = look.rows.first?.values ?? []
        guard values.count == 4 else { throw PostgresError(.protocolViolation, "unexpected answer about pg_stat_activity") }
        let standby = if case .bool(let b) = values[0] { b } else { false }
        return Visibility(standby: standby, oldestStart: values[1].int64, hiddenSessions: values[2].int64 ?? 0,
                          preparedTransactions: values[3].int64 ?? 0)
    }

    /// Ends the read transaction (nothing was written in it).
    static func finish(on connection: PostgresConnection) throws {
        try connection.execute("COMMIT")
    }

    /// A cursor value (from a manifest) as an orderable point, parsed by the server so its text rules apply.
    static func point(_ text: String, type: String, on connection: PostgresConnection) throws -> CursorPoint? {
        let result = try connection.query("SELECT $1::\(type)", [text])
        return result.rows.first?.values.first.flatMap(CursorPoint.init)
    }
}

extension CursorPoint {
    /// The point of a decoded cursor value; nil for a type that cannot be a cursor.
    init?(_ value: PostgresValue) {
        switch value {
        case .int16(let v): self = .integer(Int64(v))
        case .int32(let v): self = .integer(Int64(v))
        case .int64(let v): self = .integer(v)
        case .timestamptz(let micros): self = .integer(micros)
        case .date(let days): self = .integer(Int64(days))
        case .numeric(let text): self = .decimal(text)
        default: return nil
        }
    }
}

extension PostgresValue {
    var int64: Int64? {
        switch self {
        case .int16(let v): Int64(v)
        case .int32(let v): Int64(v)
        case .int64(let v): v
        default: nil
        }
    }
}
