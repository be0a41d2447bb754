import Foundation
import Postgres
import Testing

/// A PostgreSQL cluster of one test's own, so the test can restart it without disturbing the suite's shared server.
/// Every server command runs with its stdio on /dev/null (a postmaster started by `pg_ctl` inherits them: a pipe the
/// test read to EOF would never close) and every wait is bounded.
final class DedicatedCluster {
    let directory: URL
    let port = 5432
    private let bin: String
    private let runAs: [String]
    var socketDirectory: String { directory.appendingPathComponent("socket").path }
    var data: String { directory.appendingPathComponent("data").path }
    var logFile: String { directory.appendingPathComponent("server.log").path }
    var conninfo: String { "host=\(socketDirectory) port=\(port) user=postgres dbname=postgres" }

    init() throws {
        let roots = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = roots.compactMap(Int.init).max() else { throw TestFailure("no PostgreSQL under /usr/lib/postgresql") }
        bin = "/usr/lib/postgresql/\(version)/bin"
        directory = URL(fileURLWithPath: "/tmp/etl-dedicated-pg-\(UUID().uuidString.prefix(8).lowercased())")
        // initdb refuses root: the cluster belongs to the postgres user, as in scripts/lib.sh.
        runAs = getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        if getuid() == 0 { try Self.run(["/bin/chown", "-R", "postgres:postgres", directory.path], timeout: 10) }
        try Self.run(runAs + ["\(bin)/initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8"],
                     timeout: 120)
        try pgctl(["start", "-o", "-c listen_addresses='' -p \(port) -c unix_socket_directories=\(socketDirectory) -c fsync=off"])
    }

    deinit {
        try? pgctl(["stop", "-m", "immediate"])
        try? FileManager.default.removeItem(at: directory)
    }

    /// `pg_ctl restart -m fast`: every backend is terminated, the server shuts down cleanly and starts again; returns
    /// once it accepts connections.
    func restartFast() throws { try pgctl(["restart", "-m", "fast"]) }

    private func pgctl(_ arguments: [String]) throws {
        try Self.run(runAs + ["\(bin)/pg_ctl", "-D", data, "-l", logFile, "-w", "-t", "60"] + arguments, timeout: 90)
    }

    /// Runs a command with stdio on /dev/null and every other descriptor of this process closed; fails (and kills it)
    /// past `timeout` seconds. Not Foundation's Process: it hands the child a socket it watches for the child's exit,
    /// and the postmaster that `pg_ctl start` leaves behind would inherit it, so the command would never seem to end.
    static func run(_ command: [String], timeout: Double) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in 0...2 {
            posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
        }
        // Descriptors other threads open meanwhile (test processes' pipes) are inherited too: a shell closes every
        // one above 2 before it runs the command.
        let closer = #"for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; exec "$@""#
        let wrapped = ["/bin/bash", "-c", closer, "etl-test-spawn"] + command
        var argv: [UnsafeMutablePointer<CChar>?] = wrapped.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/bash", &actions, nil, &argv, environ)
        guard spawned == 0 else { throw TestFailure("cannot start \(command[0]): errno \(spawned)") }
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() >= deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                throw TestFailure("\(command.joined(separator: " ")) did not finish in \(timeout) s")
            }
            usleep(20_000)
        }
        // WIFEXITED and WEXITSTATUS are macros: exited normally when the low 7 bits are 0, the code in the next 8.
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw TestFailure("\(command.joined(separator: " ")) ended with wait status \(status)")
        }
    }
}

@Suite struct OpsRestartTests {
    @Test(.timeLimit(.minutes(5)))
    func aFastRestartOfTheServerMidExtractIsRetriedAndPublishesWhatAnUndisturbedRunWould() throws {
        let cluster = try DedicatedCluster()
        let ws = try Workspace("restart")
        let db = try PostgresConnection(conninfo: cluster.conninfo)
        try db.execute("""
            CREATE TABLE feedback (
                id bigint PRIMARY KEY, user_id bigint NOT NULL, rating smallint, label text NOT NULL,
                score double precision NOT NULL, payload bytea NOT NULL, created_at timestamptz NOT NULL)
            """)
        try db.execute("""
            INSERT INTO feedback
            SELECT g, g % 10, (g % 5) + 1, (ARRAY['good','bad','meh'])[1 + g % 3], g / 8.0,
                   decode(repeat(lpad(to_hex(g), 8, '0'), 64 + g % 5), 'hex'),
                   timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
            FROM generate_series(1, 600) AS g
            """)
        // An ordered index scan, not a sort: rows leave the server one by one as the per-row sleep lets them, so the
        // extract is still streaming well after the run's first checkpoint (this cluster is the test's own).
        try db.execute("ALTER DATABASE postgres SET enable_sort = off")
        let pipeline = ResumeTests.pipeline
            .replacingOccurrences(of: "$S.feedback", with: "public.feedback")
            .replacingOccurrences(of: "source:\n", with: "source:\n  connection: \"\(cluster.conninfo)\"\n  retry: {attempts: 5, initial_delay_s: 0.2, max_delay_s: 1}\n")
        try ws.writePipeline("calm", pipeline.replacingOccurrences(of: "name: fb", with: "name: calm"))
        let calm = try ws.etl("run", "calm")
        #expect(calm.status == 0, "\(calm.output)")
        // 10 ms a row on the server: the extract is still streaming when the run is held at its first checkpoint.
        try ws.writePipeline("fb", pipeline.replacingOccurrences(of: "FROM public.feedback", with: "FROM public.feedback WHERE pg_sleep(0.01) IS NOT NULL"))

        let gate = ws.directory.appendingPathComponent("gate").path
        let stderrPath = ws.directory.appendingPathComponent("run.stderr").path
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let stderrFile = try #require(FileHandle(forWritingAtPath: stderrPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: etlBinary)
        process.arguments = ["run", "fb"]
        process.currentDirectoryURL = ws.directory
        process.environment = ProcessInfo.processInfo.environment.merging(["ETL_TEST_PAUSE_AFTER_CHECKPOINT": gate]) { $1 }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = stderrFile
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        func held() -> Bool {
            ((try? FileManager.default.contentsOfDirectory(atPath: ws.directory.path)) ?? []).contains { $0.hasPrefix("gate.ready.") }
        }
        var deadline = Date().addingTimeInterval(60)
        while !held() && process.isRunning && Date() < deadline { usleep(20_000) }
        try #require(held(), "the run reached its first checkpoint")
        let active = try db.query("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' AND state = 'active' AND pid <> pg_backend_pid()")
        #expect(active.rows.first?.values.first == .int64(1), "the run's extract is still running on the server")

        try cluster.restartFast()
        FileManager.default.createFile(atPath: gate, contents: nil)
        deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        try #require(!process.isRunning, "the run ended within 2 minutes")
        try stderrFile.close()
        let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "\(stderr)")
        #expect(stderr.contains("retry 1 of 5"), "\(stderr)")

        #expect(ws.versions("fb") == ["v1"])
        let manifest = try ws.manifest("fb", "v1")
        #expect(manifest.counts.rowsRead == 600 && manifest.counts.samples == 600)
        for split in ["train", "val", "test"] {
            let a = FileManager.default.contents(atPath: ws.versionDirectory("fb", "v1").appendingPathComponent("\(split)/index.json").path)
            let b = FileManager.default.contents(atPath: ws.versionDirectory("calm", "v1").appendingPathComponent("\(split)/index.json").path)
            #expect(a != nil && a == b, "\(split)/index.json differs from the undisturbed run's")
        }
        // The retry resumed from a checkpoint of the first attempt: it fetched only rows after it.
        let record = try #require(try OpsKillTests.lastLedgerRecord(ws))
        let fetched = try #require(record["rows_fetched"] as? Int)
        #expect(fetched < 600, "the retry fetched \(fetched) rows")
    }
}
