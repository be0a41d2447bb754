import Foundation
import Testing
@testable import Postgres

@Suite(needsDatabase)
struct ConnectionTests {
    @Test func connectsWithTheEnvironmentDefaults() throws {
        let connection = try TestDatabase.connect()
        #expect(connection.serverVersion >= 100_000)
        #expect(connection.isConnected)
        #expect(try connection.query("SHOW client_encoding").rows[0].values[0] == .text("UTF8"))
        #expect(try connection.query("SELECT current_setting('application_name') AS a").rows[0]["a"] == .text("etl"))
    }

    @Test func closedPortFailsFastAndIsRetryable() throws {
        let port = try closedPort()
        let started = ContinuousClock.now
        let error = try #require(throws: PostgresError.self) {
            _ = try PostgresConnection(conninfo: "host=127.0.0.1 port=\(port) dbname=x user=y password=topsecret")
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(error.kind == .connectionFailed)
        #expect(error.isRetryable)
        #expect(error.sqlstate == nil)
        #expect(error.description.contains("\(port)"))
        #expect(!error.description.contains("topsecret"), "\(error)")
    }

    /// A server that accepts the TCP connection but never answers: only connect_timeout ends the wait.
    @Test func silentServerTimesOut() throws {
        let listener = try SilentListener()
        let started = ContinuousClock.now
        let error = try #require(throws: PostgresError.self) {
            _ = try PostgresConnection(conninfo: "postgresql://u:pw@127.0.0.1:\(listener.port)/db?connect_timeout=2")
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .seconds(1.5) && elapsed < .seconds(6), "took \(elapsed)")
        #expect(error.kind == .connectionFailed)
        #expect(error.isRetryable)
        #expect(error.message.contains("timed out"), "\(error)")
        #expect(error.description.contains("postgresql://u:***@127.0.0.1"), "\(error)")
    }

    @Test func wrongPasswordIsAnAuthenticationFailureThatNeverShowsThePassword() throws {
        try TestDatabase.withPasswordRole(password: "right-Pa55") { role in
            let port = TestDatabase.tcpPort, db = TestDatabase.database
            let wrong = "Wr0ng'Pass word"
            let conninfos = [
                "host=127.0.0.1 port=\(port) dbname=\(db) user=\(role) password='Wr0ng\\'Pass word'",
                "postgresql://\(role):Wr0ng%27Pass%20word@127.0.0.1:\(port)/\(db)",
                "postgresql://\(role)@127.0.0.1:\(port)/\(db)?password=Wr0ng%27Pass%20word",
            ]
            for conninfo in conninfos {
                let error = try #require(throws: PostgresError.self) { _ = try PostgresConnection(conninfo: conninfo) }
                #expect(error.kind == .authenticationFailed, "\(error)")
                #expect(error.sqlstate == "28P01")
                #expect(!error.isRetryable)
                for fragment in [wrong, "Wr0ng", "Pass word", "Wr0ng%27Pass%20word"] {
                    #expect(!error.description.contains(fragment), "\(error)")
                }
                #expect(error.description.contains(role))
            }
            // The same role with the right password gets in, so the failure above was about the password alone.
            let connection = try PostgresConnection(
                conninfo: "host=127.0.0.1 port=\(port) dbname=\(db) user=\(role) password=right-Pa55")
            #expect(try connection.query("SELECT current_user::text AS u").rows[0]["u"] == .text(role))
        }
    }

    @Test func missingPasswordIsAnAuthenticationFailure() throws {
        try TestDatabase.withPasswordRole(password: "whatever1") { role in
            let error = try #require(throws: PostgresError.self) {
                _ = try PostgresConnection(conninfo: """
                    host=127.0.0.1 port=\(TestDatabase.tcpPort) dbname=\(TestDatabase.database) user=\(role) \
                    passfile=/nonexistent
                    """)
            }
            #expect(error.kind == .authenticationFailed, "\(error)")
            #expect(error.sqlstate == nil)
            #expect(error.description.contains("password"))
        }
    }

    @Test func unknownRoleOverTrustedSocketIsAnAuthenticationFailure() throws {
        let error = try #require(throws: PostgresError.self) {
            _ = try PostgresConnection(conninfo: "user=\(TestDatabase.uniqueName("nobody"))")
        }
        #expect(error.kind == .authenticationFailed)
        #expect(error.sqlstate == "28000")
    }

    @Test func unknownDatabaseIsNotRetryable() throws {
        let name = TestDatabase.uniqueName("nodb")
        let error = try #require(throws: PostgresError.self) { _ = try PostgresConnection(conninfo: "dbname=\(name)") }
        #expect(error.kind == .connectionFailed)
        #expect(error.sqlstate == "3D000")
        #expect(!error.isRetryable)
        #expect(error.description.contains(name))
        #expect(!error.description.contains("LOCATION"))
    }

    /// A fault the server reports while refusing the session is classified by its SQLSTATE (53300: too many
    /// connections), so a retry policy can tell it from a configuration error.
    @Test func serverSideRefusalKeepsItsSQLSTATE() throws {
        let admin = try TestDatabase.connect()
        let role = TestDatabase.uniqueName("full")
        try admin.execute("CREATE ROLE \(role) LOGIN CONNECTION LIMIT 0")
        defer { _ = try? admin.execute("DROP ROLE \(role)") }
        let error = try #require(throws: PostgresError.self) { _ = try PostgresConnection(conninfo: "user=\(role)") }
        #expect(error.kind == .connectionFailed)
        #expect(error.sqlstate == "53300")
        #expect(error.isRetryable)
    }

    @Test func terminatedBackendIsConnectionLostAndRetryable() throws {
        let victim = try TestDatabase.connect()
        let admin = try TestDatabase.connect()
        _ = try admin.query("SELECT pg_terminate_backend($1::int4) AS ok", [String(victim.backendPID)])
        // The server closes the session asynchronously; give it a moment.
        var error: PostgresError?
        for _ in 0..<50 {
            do {
                _ = try victim.query("SELECT 1::int4 AS one")
                Thread.sleep(forTimeInterval: 0.05)
            } catch let caught {
                error = caught
                break
            }
        }
        let lost = try #require(error)
        #expect(lost.kind == .connectionLost, "\(lost)")
        #expect(lost.isRetryable)
        #expect(!victim.isConnected)
        let again = try #require(throws: PostgresError.self) { try victim.execute("SELECT 1") }
        #expect(again.kind == .connectionLost)
    }

    @Test func noticesGoToTheHandler() throws {
        let connection = try TestDatabase.connect()
        var notices: [String] = []
        connection.noticeHandler = { notices.append($0) }
        #expect(try connection.advisoryUnlock(Int64.random(in: 1...Int64.max)) == false)
        #expect(notices.contains { $0.contains("WARNING") && $0.contains("lock") }, "\(notices)")
    }

    /// A port nothing listens on: bind an ephemeral port, then close it.
    private func closedPort() throws -> UInt16 {
        let listener = try SilentListener()
        let port = listener.port
        listener.close()
        return port
    }
}

/// A TCP socket on 127.0.0.1 that completes handshakes (through the kernel's backlog) but never reads or answers.
final class SilentListener {
    let descriptor: Int32
    let port: UInt16
    private var isOpen = true

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard fd >= 0, bound == 0, named == 0, listen(fd, 8) == 0 else {
            if fd >= 0 { _ = Glibc.close(fd) }
            throw POSIXError(.EADDRINUSE)
        }
        descriptor = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    func close() {
        if isOpen { _ = Glibc.close(descriptor); isOpen = false }
    }

    deinit { close() }
}
