internal import CLibPQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns a `PGconn` while it is being set up, so that every way out of a failed connection attempt frees it; a
/// successful attempt hands the pointer over to `PostgresConnection`, which owns it from then on.
struct ConnectionHandle: ~Copyable {
    let raw: OpaquePointer

    init(_ raw: OpaquePointer) { self.raw = raw }

    consuming func release() -> OpaquePointer {
        let raw = self.raw
        discard self
        return raw
    }

    deinit { PQfinish(raw) }
}

/// Swallows notices until the connection installs its own handler: libpq's default prints them to stderr, which
/// would interleave with the tool's structured logs.
let silentNoticeProcessor: PQnoticeProcessor = { _, _ in }

extension PostgresConnection {
    /// Seconds a connection attempt to one server may take when neither the conninfo nor PGCONNECT_TIMEOUT says.
    /// libpq's own default is to wait forever, which turns a black-holed network into a hung cron job.
    static let defaultConnectTimeout = "10"

    /// Connects; `target` receives the redacted description of the server, for later error messages.
    static func open(_ conninfo: String, target shown: inout String) throws(PostgresError) -> ConnectionHandle {
        let redaction = Conninfo.redact(conninfo)
        var secrets = redaction.secrets
        let shownConninfo = conninfo.isEmpty ? nil : "conninfo \"\(redaction.text)\""

        if Conninfo.isConnectionString(conninfo) {
            // libpq reports a malformed string the same way as a refused connection; parsing first separates a
            // configuration mistake (never worth retrying) from a fault of the network or server.
            var errorMessage: UnsafeMutablePointer<CChar>?
            if let options = PQconninfoParse(conninfo, &errorMessage) {
                secrets += Self.passwords(in: options)
                PQconninfoFree(options)
            } else {
                let message = errorMessage.map { String(cString: $0).trimmingTrailingNewlines() } ?? "out of memory"
                if let errorMessage { PQfreemem(errorMessage) }
                throw PostgresError(
                    .invalidConninfo, Conninfo.scrub(message, secrets: secrets), target: shownConninfo)
            }
        }

        // Keywords are applied in order and later ones win: defaults go before the caller's conninfo (expanded
        // from dbname) so it can override them; client_encoding goes after because text decoding relies on UTF-8.
        var parameters: [(String, String)] = [("fallback_application_name", "etl")]
        if Environment.value("PGCONNECT_TIMEOUT") == nil {
            parameters.append(("connect_timeout", defaultConnectTimeout))
        }
        // Detect a dead peer during long streams within minutes instead of the kernel's two hours.
        parameters += [("keepalives_idle", "60"), ("keepalives_interval", "10"), ("keepalives_count", "6")]
        parameters += [("dbname", conninfo), ("client_encoding", "UTF8")]

        let started = withCStrings(parameters.map(\.0)) { keywords in
            withCStrings(parameters.map(\.1)) { values in
                PQconnectStartParams(keywords, values, 1)
            }
        }
        guard let started else { throw PostgresError(.connectionFailed, "libpq could not allocate a connection") }
        let handle = ConnectionHandle(started)
        _ = PQsetNoticeProcessor(handle.raw, silentNoticeProcessor, nil)

        var timedOut: String?
        if PQstatus(handle.raw) != CONNECTION_BAD {
            // Verbose errors make libpq put the server's SQLSTATE into the connection error text, the only place
            // it is exposed before a session exists. That is what tells a wrong password (28P01) from a missing
            // database (3D000) or a server still starting up (57P03), in any server language. It has to be set
            // before the first poll, which is why the connection is driven here instead of by PQconnectdb.
            _ = PQsetErrorVerbosity(handle.raw, PQERRORS_VERBOSE)
            timedOut = driveConnection(handle.raw)
        }
        secrets += [PQpass(handle.raw).map { String(cString: $0) } ?? ""]
        let target = Conninfo.scrub(
            [shownConninfo, Self.effectiveTarget(handle.raw)].compactMap { $0 }.joined(separator: "; "),
            secrets: secrets)

        if let timedOut {
            throw PostgresError(.connectionFailed, timedOut, target: target)
        }
        guard PQstatus(handle.raw) == CONNECTION_OK else {
            throw Self.classifyFailure(handle.raw, secrets: secrets, target: target)
        }
        _ = PQsetErrorVerbosity(handle.raw, PQERRORS_DEFAULT)
        shown = target
        return handle
    }

    /// Drives PQconnectPoll to completion, enforcing connect_timeout per server tried. Returns a message when the
    /// attempt timed out; libpq's own errors are left in the connection.
    ///
    /// libpq only honours connect_timeout in its blocking PQconnectdb. Here the clock restarts whenever libpq moves
    /// on to another host or address, as libpq does; unlike libpq, a timeout ends the whole attempt rather than
    /// moving on to the next host (the caller's retry covers that).
    private static func driveConnection(_ conn: OpaquePointer) -> String? {
        let timeout = effectiveConnectTimeout(conn)
        let clock = ContinuousClock()
        var server = serverIdentity(conn)
        var deadline = timeout.map { clock.now.advanced(by: .seconds($0)) }
        var state = PGRES_POLLING_WRITING  // what libpq's documentation says to assume before the first poll

        while state != PGRES_POLLING_OK && state != PGRES_POLLING_FAILED {
            if state == PGRES_POLLING_READING || state == PGRES_POLLING_WRITING {
                let socket = PQsocket(conn)
                guard socket >= 0 else { break }
                var waitMilliseconds: Int32 = -1
                if let deadline {
                    let left = clock.now.duration(to: deadline)
                    let (seconds, attoseconds) = left.components
                    waitMilliseconds = Int32(clamping: max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
                }
                var descriptor = pollfd(
                    fd: socket, events: Int16(state == PGRES_POLLING_READING ? POLLIN : POLLOUT), revents: 0)
                let ready = poll(&descriptor, 1, waitMilliseconds)
                if ready < 0 && errno == EINTR { continue }
                if ready == 0 {
                    let host = PQhost(conn).map { String(cString: $0) } ?? "?"
                    let port = PQport(conn).map { String(cString: $0) } ?? "?"
                    return "timed out after \(timeout ?? 0) s waiting for the server at \(host):\(port) (connect_timeout)"
                }
                // An error from poll itself is left to PQconnectPoll, which sees the same socket and reports it.
            }
            state = PQconnectPoll(conn)
            let current = serverIdentity(conn)
            if current != server, let timeout {
                server = current
                deadline = clock.now.advanced(by: .seconds(timeout))
            }
        }
        return nil
    }

    private static func serverIdentity(_ conn: OpaquePointer) -> String {
        [PQhost(conn), PQhostaddr(conn), PQport(conn)].map { $0.map { String(cString: $0) } ?? "" }
            .joined(separator: "|")
    }

    /// The connect_timeout in force (conninfo, else PGCONNECT_TIMEOUT, else our default), with libpq's rules:
    /// zero or less means no limit, and one second is raised to two.
    private static func effectiveConnectTimeout(_ conn: OpaquePointer) -> Int? {
        guard let options = PQconninfo(conn) else { return nil }
        defer { PQconninfoFree(options) }
        var option = options
        while let keyword = option.pointee.keyword {
            if String(cString: keyword) == "connect_timeout" {
                guard let value = option.pointee.val, let seconds = Int(String(cString: value)), seconds > 0 else {
                    return nil
                }
                return max(seconds, 2)
            }
            option += 1
        }
        return nil
    }

    private static func passwords(in options: UnsafeMutablePointer<PQconninfoOption>) -> [String] {
        var found: [String] = []
        var option = options
        while let keyword = option.pointee.keyword {
            if Conninfo.sensitiveKeys.contains(String(cString: keyword)), let value = option.pointee.val {
                found.append(String(cString: value))
            }
            option += 1
        }
        return found
    }

    /// Where libpq actually went, after defaults and PG* variables were applied; never includes the password.
    static func effectiveTarget(_ conn: OpaquePointer) -> String? {
        let parts = [("host", PQhost(conn)), ("port", PQport(conn)), ("dbname", PQdb(conn)), ("user", PQuser(conn))]
            .compactMap { key, value -> String? in
                guard let value else { return nil }
                let text = String(cString: value)
                return text.isEmpty ? nil : "\(key)=\(text)"
            }
        return parts.isEmpty ? nil : parts.joined(separator: " ")
    }

    private static func classifyFailure(_ conn: OpaquePointer, secrets: [String], target: String) -> PostgresError {
        let raw = Conninfo.scrub(String(cString: PQerrorMessage(conn)), secrets: secrets)
        let (message, sqlstates) = parseVerboseConnectionMessage(raw)
        // With several hosts, each attempt leaves a message; a credentials problem on any of them is the one the
        // user must fix, otherwise the last attempt's reason stands.
        let sqlstate = sqlstates.first(where: { $0.hasPrefix("28") }) ?? sqlstates.last
        let kind: PostgresError.Kind
        if sqlstate?.hasPrefix("28") == true || PQconnectionNeedsPassword(conn) == 1 {
            kind = .authenticationFailed
        } else if sqlstate == nil, PQconnectionUsedPassword(conn) == 1,
                  message.lowercased().contains("authentication") || message.contains("SCRAM") {
            // Failures detected by libpq itself during the exchange (e.g. a SCRAM server signature mismatch) carry
            // no SQLSTATE; libpq's messages are English because this process does not set a message locale.
            kind = .authenticationFailed
        } else {
            kind = .connectionFailed
        }
        let shown = PQconnectionNeedsPassword(conn) == 1
            ? message + " (the server asked for a password and none was configured)"
            : message
        return PostgresError(kind, shown, sqlstate: sqlstate, target: target)
    }

    /// Pulls the SQLSTATEs out of a verbose libpq connection error ("…failed: FATAL:  28P01: password
    /// authentication failed…") and returns the text without them and without the server's LOCATION lines.
    static func parseVerboseConnectionMessage(_ text: String) -> (message: String, sqlstates: [String]) {
        var sqlstates: [String] = []
        var lines: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("LOCATION:  ") { continue }
            var kept = String(line)
            // The severity is followed by two spaces, then the code and ": ". Five uppercase letters or digits there
            // is the code, whatever language the severity word is in.
            if let marker = kept.firstRange(of: ":  ") {
                let after = kept[marker.upperBound...]
                let code = after.prefix(5)
                if code.count == 5, code.allSatisfy({ $0.isASCII && ($0.isNumber || $0.isUppercase) }),
                   after.dropFirst(5).hasPrefix(": ") {
                    sqlstates.append(String(code))
                    kept.removeSubrange(marker.upperBound..<after.index(after.startIndex, offsetBy: 7))
                }
            }
            lines.append(kept)
        }
        return (lines.joined(separator: "\n").trimmingTrailingNewlines(), sqlstates)
    }
}

/// Environment lookup without Foundation, which this module does not otherwise need.
enum Environment {
    static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

/// Calls `body` with NUL-terminated copies of `strings`, in one allocation that lives for the call, followed by a
/// terminating nil as libpq's keyword arrays require (parameter arrays ignore it).
func withCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let total = strings.reduce(0) { $0 + ($1?.utf8.count ?? 0) + 1 }
    let storage = UnsafeMutableBufferPointer<CChar>.allocate(capacity: max(total, 1))
    defer { storage.deallocate() }
    var pointers: [UnsafePointer<CChar>?] = []
    pointers.reserveCapacity(strings.count + 1)
    var offset = 0
    for string in strings {
        guard let string else { pointers.append(nil); continue }
        let start = offset
        for byte in string.utf8 { storage[offset] = CChar(bitPattern: byte); offset += 1 }
        storage[offset] = 0
        offset += 1
        pointers.append(UnsafePointer(storage.baseAddress! + start))
    }
    pointers.append(nil)
    return body(pointers)
}
