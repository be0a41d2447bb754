internal import CLibPQ

/// One PostgreSQL session over libpq.
///
/// Every call blocks its thread until the server answers, so run a connection on a dedicated thread, not on the
/// cooperative pool. A connection is used by one thread at a time (it is deliberately not `Sendable`); hand it
/// over with `sending` if needed. After a `connectionLost` error it stays unusable: open a new one.
public final class PostgresConnection {
    /// The one owner of the `PGconn`, finished in `deinit`.
    let raw: OpaquePointer
    /// Redacted description of the server, for error messages.
    let target: String
    /// `pg_type.typname` of OIDs outside the built-in table, looked up on demand.
    var typeNameCache: [UInt32: String] = [:]
    var extensionTypesLoaded = false
    /// Set while `stream` is reading rows: libpq cannot run another statement on the connection until it finishes.
    var isStreaming = false

    /// Receives the server's notices and warnings (e.g. from `advisoryUnlock` of a lock not held). Without a
    /// handler they are dropped; libpq's default would print them to stderr.
    public var noticeHandler: ((String) -> Void)?

    /// Connects and waits until the session is ready.
    ///
    /// `conninfo` is a `key=value` string, a `postgresql://` URI, a bare database name, or "" to use libpq's
    /// defaults and the standard PG* environment variables. Unless the conninfo or PGCONNECT_TIMEOUT says
    /// otherwise, each server gets 10 seconds to answer. The session always uses client_encoding UTF8.
    public init(conninfo: String) throws(PostgresError) {
        var target = ""
        let handle = try Self.open(conninfo, target: &target)
        self.target = target
        self.raw = handle.release()
        let processor: PQnoticeProcessor = { context, message in
            guard let context, let message else { return }
            let connection = Unmanaged<PostgresConnection>.fromOpaque(context).takeUnretainedValue()
            connection.noticeHandler?(String(cString: message).trimmingTrailingNewlines())
        }
        // Unretained: libpq only calls the processor from inside calls on this connection, while self is alive.
        _ = PQsetNoticeProcessor(raw, processor, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        _ = PQsetNoticeProcessor(raw, silentNoticeProcessor, nil)
        PQfinish(raw)
    }

    /// The server's version as an integer, e.g. 150018 for 15.18.
    public var serverVersion: Int { Int(PQserverVersion(raw)) }

    /// The server process serving this session (what `pg_stat_activity.pid` and `pg_terminate_backend` use).
    public var backendPID: Int32 { PQbackendPID(raw) }

    /// False once the session has broken; every further call then fails with `connectionLost`.
    public var isConnected: Bool { PQstatus(raw) == CONNECTION_OK }

    /// True between BEGIN and COMMIT/ROLLBACK, including a transaction aborted by an error (which needs ROLLBACK).
    public var isInTransaction: Bool {
        let status = PQtransactionStatus(raw)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }
}

@available(*, unavailable, message: "a libpq connection must be used by one thread at a time")
extension PostgresConnection: Sendable {}
