/// The one error type of the `Postgres` module.
///
/// `description` is written for the person running `etl`: what failed, where, and what to try. It never contains a
/// password: connection strings are shown through ``redactedConninfo(_:)`` and libpq's own messages are scrubbed of
/// every password the connection attempt knew about.
public struct PostgresError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Hashable {
        /// The connection string could not be parsed.
        case invalidConninfo
        /// No session could be established (refused, unreachable, timed out, unknown database, too many clients …).
        case connectionFailed
        /// The server or libpq rejected the credentials (SQLSTATE class 28, or a password was required but missing).
        case authenticationFailed
        /// An established session broke (server crash or shutdown, backend terminated, network failure).
        case connectionLost
        /// The server rejected or aborted a statement; `sqlstate` says why.
        case queryFailed
        /// A result column has a type this module does not decode.
        case unsupportedType
        /// A value is valid in PostgreSQL but cannot be represented by ``PostgresValue`` (e.g. a timestamp beyond
        /// the range of Int64 microseconds since 1970).
        case valueOutOfRange
        /// The server sent something that does not match its documented wire format.
        case protocolViolation
        /// The API was used in a way it does not support (a query inside a `stream` body on the same connection,
        /// COPY through `query`, …).
        case misuse
    }

    public var kind: Kind
    /// Five-character SQLSTATE when the server reported one (also for errors that happen while connecting).
    public var sqlstate: String?
    /// The server's primary message, or libpq's / this module's message when the fault is client-side.
    public var message: String
    public var detail: String?
    public var hint: String?
    /// 1-based character offset into the statement where the server located the error.
    public var position: Int?
    /// Server-side context (e.g. the PL/pgSQL line or the column being decoded).
    public var context: String?
    /// The statement being executed, when the error concerns one.
    public var statement: String?
    /// Where the connection was going, already redacted.
    public var target: String?

    public init(
        _ kind: Kind, _ message: String, sqlstate: String? = nil, detail: String? = nil, hint: String? = nil,
        position: Int? = nil, context: String? = nil, statement: String? = nil, target: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint
        self.position = position
        self.context = context
        self.statement = statement
        self.target = target
    }

    /// Whether running the same work again, on a new connection if need be, may succeed.
    ///
    /// Transient faults are retryable: connection-level failures, serialization failures and deadlocks
    /// (40001, 40P01), administrator shutdown / crash / startup (57P01-57P03) and insufficient resources (53xxx).
    /// Everything that would fail the same way again (syntax, undefined objects, bad data, bad credentials,
    /// unsupported types) is not.
    public var isRetryable: Bool {
        switch kind {
        case .connectionLost:
            return true
        case .connectionFailed:
            // A server that answered with a SQLSTATE told us why; without one the fault is in the network or the
            // server's availability, which is exactly what a retry can outlast.
            guard let sqlstate else { return true }
            return Self.isTransient(sqlstate: sqlstate)
        case .queryFailed:
            guard let sqlstate else { return false }
            return Self.isTransient(sqlstate: sqlstate)
        case .invalidConninfo, .authenticationFailed, .unsupportedType, .valueOutOfRange, .protocolViolation, .misuse:
            return false
        }
    }

    static func isTransient(sqlstate: String) -> Bool {
        if sqlstate.hasPrefix("08") || sqlstate.hasPrefix("53") { return true }
        return ["40001", "40P01", "57P01", "57P02", "57P03"].contains(sqlstate)
    }

    public var description: String {
        var text = Self.headline(kind)
        if let sqlstate { text += " [SQLSTATE \(sqlstate)]" }
        text += ": " + message
        if let position, let statement {
            text += "\n  at character \(position) of: " + Self.excerpt(of: statement, around: position)
        } else if let statement {
            text += "\n  statement: " + Self.excerpt(of: statement, around: nil)
        }
        if let detail { text += "\n  detail: " + detail }
        if let hint { text += "\n  hint: " + hint }
        if let context { text += "\n  context: " + context }
        if let target { text += "\n  connection: " + target }
        if let advice = advice { text += "\n  " + advice }
        return text
    }

    private static func headline(_ kind: Kind) -> String {
        switch kind {
        case .invalidConninfo: "invalid PostgreSQL connection string"
        case .connectionFailed: "could not connect to PostgreSQL"
        case .authenticationFailed: "PostgreSQL authentication failed"
        case .connectionLost: "lost the connection to PostgreSQL"
        case .queryFailed: "PostgreSQL query failed"
        case .unsupportedType: "unsupported PostgreSQL column type"
        case .valueOutOfRange: "PostgreSQL value out of range"
        case .protocolViolation: "unexpected data from PostgreSQL"
        case .misuse: "unsupported use of the PostgreSQL connection"
        }
    }

    /// What the user can do about it, when that is not already obvious from the server's message.
    private var advice: String? {
        switch kind {
        case .authenticationFailed:
            return "Check the user and password (conninfo, PGPASSWORD or the passfile) and the server's pg_hba.conf."
        case .connectionFailed where isRetryable:
            return "Check that the server is running and reachable; this fault is retryable."
        case .connectionLost:
            return "The session is gone; open a new connection and retry the run."
        case .unsupportedType:
            return "Cast the column in the query to a supported type (e.g. `col::text`)."
        default:
            return nil
        }
    }

    /// Long statements are shortened around the error position so the message stays readable in a log line.
    /// The server counts the position in code points, hence unicode scalars rather than Characters.
    static func excerpt(of statement: String, around position: Int?, radius: Int = 60) -> String {
        let scalars = Array(statement.replacing("\n", with: " ").unicodeScalars)
        guard scalars.count > 2 * radius else { return String(String.UnicodeScalarView(scalars)) }
        let center = min(max((position ?? 1) - 1, 0), scalars.count - 1)
        let start = max(0, center - radius)
        let end = min(scalars.count, center + radius)
        return (start > 0 ? "…" : "") + String(String.UnicodeScalarView(scalars[start..<end]))
            + (end < scalars.count ? "…" : "")
    }
}
