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
        // Sessions of other roles show a NULL state unless this role may read all statistics: then the bound is
        // unknown, and so it is on a standby (the writers are on the primary) or with prepared transactions.
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
        let standby = values.first.flatMap { if case .bool(let b) = $0 { b } else { nil } } ?? false
        let oldest = values.count > 1 ? values[1].int64 : nil
        let hidden = (values.count > 2 ? values[2].int64 : nil) ?? 0
        let prepared = (values.count > 3 ? values[3].int64 : nil) ?? 0
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
        let knowsOldest = !standby && hidden == 0 && prepared == 0
        return .init(snapshot: snapshot, xmin: xmin, xmax: xmax, takenAt: at,
                     oldestTransactionStart: knowsOldest ? oldest : nil, standby: standby)
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
