import Foundation
import Testing

/// scripts/lib/s3_fault_proxy.py in front of the suite's S3 server: it forwards every request, except those its
/// rules pick, which it answers with 503 SlowDown / 500 InternalError or whose connection it resets. The test sets the
/// rules with `set(_:)` and reads what happened from `requests()`.
///
/// Started with posix_spawn, stdio on files and every inherited descriptor closed (not Foundation's Process, whose
/// exit-watch socket a child inherits: see `DedicatedCluster.run`), so nothing of the test waits on the proxy's
/// descriptors; it is killed in `stop()` / `deinit`, and exits by itself when the test process is gone.
final class S3FaultProxy {
    struct Rule: Encodable {
        enum Kind: String, Encodable { case putObject = "PutObject", uploadPart = "UploadPart",
                                           completeMultipartUpload = "CompleteMultipartUpload", copyObject = "CopyObject", any }
        /// `resetAfterForwarding`: the server acts on the request, the client never gets the response.
        enum Action: String, Encodable { case slowDown = "503", internalError = "500", noSuchUpload = "404_upload", reset, resetAfterForwarding = "reset_after" }
        var kind: Kind
        var keyContains: String?
        /// Matching requests let through before the rule fires.
        var after = 0
        /// How many it fails; nil: every one from then on.
        var count: Int?
        var action: Action

        enum CodingKeys: String, CodingKey { case kind, keyContains = "key_contains", after, count, action }
    }

    struct Request: Decodable {
        var kind: String
        var path: String
        var fault: String?
    }

    let directory: URL
    let endpoint: String
    private var pid: pid_t
    private let controlFile: URL
    private let logFile: URL

    init(upstream: String) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("etl-fault-proxy-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        controlFile = directory.appendingPathComponent("control.json")
        logFile = directory.appendingPathComponent("requests.jsonl")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/lib/s3_fault_proxy.py").path
        let portFile = directory.appendingPathComponent("port").path
        pid = try Self.spawn(["/usr/bin/python3", script, "--upstream", upstream, "--control", controlFile.path,
                              "--port-file", portFile, "--log", logFile.path, "--lifetime", "900"],
                             output: directory.appendingPathComponent("proxy.out").path)
        let deadline = Date().addingTimeInterval(20)
        var port: String?
        while port == nil && Date() < deadline {
            port = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { $0.isEmpty ? nil : $0 }
            if port == nil { usleep(50_000) }
        }
        guard let port else {
            let output = (try? String(contentsOfFile: directory.appendingPathComponent("proxy.out").path, encoding: .utf8)) ?? ""
            Self.terminate(pid)
            throw TestFailure("the fault proxy did not start within 20 s: \(output.suffix(500))")
        }
        endpoint = "http://127.0.0.1:\(port)"
    }

    deinit { stop() }

    func stop() {
        guard pid > 0 else { return }
        Self.terminate(pid)
        pid = 0
        try? FileManager.default.removeItem(at: directory)
    }

    /// Replaces the rules (their counters start over), written whole and renamed so the proxy never reads half a file.
    func set(_ rules: [Rule]) throws {
        let data = try JSONEncoder().encode(["rules": rules])
        let temporary = directory.appendingPathComponent("control.tmp")
        try data.write(to: temporary)
        _ = rename(temporary.path, controlFile.path)
    }

    /// Every request so far, in order.
    func requests() -> [Request] {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }

    func faults(_ kind: String) -> Int { requests().filter { $0.kind == kind && $0.fault != nil }.count }

    private static func spawn(_ command: [String], output: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Descriptors other threads open meanwhile (other tests' pipes) would be inherited: close every one above 2.
        let closer = #"for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; exec "$@""#
        let wrapped = ["/bin/bash", "-c", closer, "etl-fault-proxy"] + command
        var argv: [UnsafeMutablePointer<CChar>?] = wrapped.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/bash", &actions, nil, &argv, environ)
        guard spawned == 0 else { throw TestFailure("cannot start the fault proxy: errno \(spawned)") }
        return pid
    }

    /// SIGTERM, then SIGKILL if it is still there after 5 s; always reaped.
    private static func terminate(_ pid: pid_t) {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(5)
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() >= deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                return
            }
            usleep(20_000)
        }
    }
}
