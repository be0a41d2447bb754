import Foundation
import Testing
import Yams

/// SIGTERM/SIGINT: stop within seconds, exit 10, release the lock, publish nothing. And the deployment files that
/// rely on it.
@Suite("etl run: signals and deployment")
struct OpsShutdownTests {
    /// Starts `etl run fb`, sends `signal` once the run is staging, and returns the process (ended) and its stderr.
    func signalMidRun(_ ws: Workspace, _ signal: Int32) throws -> (Process, String, Double) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: etlBinary)
        process.arguments = ["run", "fb"]
        process.currentDirectoryURL = ws.directory
        let errPipe = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errPipe
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while !ws.datasetEntries("fb").contains(where: { $0.hasPrefix(".staging") }) && Date() < deadline { usleep(20_000) }
        usleep(300_000)
        let sent = Date()
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        let stderr = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process, stderr, Date().timeIntervalSince(sent))
    }

    /// Rows streaming (a large table, no sleep): the runner sees the flag at the next row and stops cleanly.
    func interruptWhileRowsStream(_ signal: Int32) throws {
        let ws = try Workspace("sig\(signal)")
        try seedFeedback(ws, count: 150_000)
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "size_limit: 4KiB", with: "size_limit: 1MiB"))
        let (process, stderr, took) = try signalMidRun(ws, signal)
        #expect(process.terminationReason == .exit && process.terminationStatus == 10, "\(process.terminationStatus) \(stderr)")
        #expect(took < 5, "took \(took) s to stop")
        #expect(stderr.contains("interrupted by \(signal == SIGTERM ? "SIGTERM" : "SIGINT")"), "\(stderr)")
        #expect(ws.versions("fb").isEmpty)
        #expect(!ws.datasetEntries("fb").contains { $0.hasPrefix(".staging") }, "staging discarded: \(ws.datasetEntries("fb"))")
        let ledger = try String(contentsOf: ws.datasets.appendingPathComponent("fb/runs.jsonl"), encoding: .utf8)
        #expect(ledger.contains(#""exit_code":10"#) && ledger.contains(#""failure":"interrupted""#), "\(ledger)")

        // The lock was released and the cursor did not move: the next run takes every row.
        let next = try ws.etl("run", "fb")
        #expect(next.status == 0, "\(next.output)")
        #expect(try ws.manifest("fb", "v1").counts.samples == 150_000)
    }

    @Test func sigtermStopsTheRunCleanly() throws { try interruptWhileRowsStream(SIGTERM) }

    @Test func sigintStopsTheRunCleanly() throws { try interruptWhileRowsStream(SIGINT) }

    /// A query still sorting towards its first row (pg_sleep per row before the ORDER BY) sends nothing to check the
    /// flag at: the watchdog ends the process by the signal after the grace period. Nothing published, and the next
    /// run cleans up and takes every row.
    @Test func aQueryWithoutRowsYetIsStoppedByTheWatchdog() throws {
        let ws = try Workspace("sigwatch")
        try seedFeedback(ws, count: 600)
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "FROM $S.feedback", with: "FROM $S.feedback WHERE pg_sleep(0.02) IS NOT NULL"))
        let (process, stderr, took) = try signalMidRun(ws, SIGTERM)
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGTERM, "\(process.terminationStatus) \(stderr)")
        #expect(took > 4 && took < 8, "took \(took) s")
        #expect(stderr.contains("still running 5 s after the signal"), "\(stderr)")
        #expect(ws.versions("fb").isEmpty)
        try ws.writePipeline("fb", basicPipeline)
        let next = try ws.etl("run", "fb")
        #expect(next.status == 0, "\(next.output)")
        #expect(next.stderr.contains("left by an interrupted run"))
        #expect(try ws.manifest("fb", "v1").counts.samples == 600)
    }

    static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy")

    /// The long options a command line in a deployment file uses must be options of `etl run`.
    func checkFlags(_ arguments: [String], in help: String, file: String) {
        for argument in arguments where argument.hasPrefix("--") {
            #expect(help.contains(argument), "\(file) uses \(argument), which etl run --help does not list")
        }
    }

    @Test func kubernetesManifests() throws {
        let help = try runProcess(etlBinary, ["run", "--help"]).stdout
        let directory = Self.deploy.appendingPathComponent("kubernetes")
        var kinds: [String: [String: Any]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name.hasSuffix(".yaml") {
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            for document in try Yams.load_all(yaml: text) {
                let object = try #require(document as? [String: Any], "\(name) holds a document that is not a mapping")
                kinds[try #require(object["kind"] as? String, "\(name): no kind")] = object
            }
        }
        let cronJob = try #require(kinds["CronJob"])
        let spec = try #require(cronJob["spec"] as? [String: Any])
        #expect(spec["concurrencyPolicy"] as? String == "Forbid")
        let job = try #require((spec["jobTemplate"] as? [String: Any])?["spec"] as? [String: Any])
        #expect((job["backoffLimit"] as? Int).map { $0 >= 0 } == true)
        let rules = try #require((job["podFailurePolicy"] as? [String: Any])?["rules"] as? [[String: Any]])
        let failJobCodes = rules.compactMap { ($0["onExitCodes"] as? [String: Any])?["values"] as? [Int] }.flatMap { $0 }
        #expect(Set(failJobCodes) == [1, 2, 4, 7, 8], "codes that need a person fail the job; 3, 5, 6, 10 are retried")
        let pod = try #require((job["template"] as? [String: Any])?["spec"] as? [String: Any])
        #expect(pod["restartPolicy"] as? String == "Never")
        #expect((pod["terminationGracePeriodSeconds"] as? Int).map { $0 >= 10 } == true)
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        let args = try #require(container["args"] as? [String])
        #expect(args.first == "run")
        checkFlags(args, in: help, file: "cronjob.yaml")
        let env = try #require(container["env"] as? [[String: Any]])
        let secretNames = env.compactMap { (($0["valueFrom"] as? [String: Any])?["secretKeyRef"] as? [String: Any])?["name"] as? String }
        let secretName = try #require(secretNames.first)
        let volumes = try #require(pod["volumes"] as? [[String: Any]])
        let claims = volumes.compactMap { ($0["persistentVolumeClaim"] as? [String: Any])?["claimName"] as? String }
        let claim = try #require(claims.first)

        let secret = try #require(kinds["Secret"])
        #expect((secret["metadata"] as? [String: Any])?["name"] as? String == secretName)
        #expect(!"\(secret)".lowercased().contains("password="), "no password committed in the Secret")
        let pvc = try #require(kinds["PersistentVolumeClaim"])
        #expect((pvc["metadata"] as? [String: Any])?["name"] as? String == claim)
    }

    /// `key=value` lines of a systemd unit (comments and sections skipped).
    func unitSettings(_ name: String) throws -> [String: String] {
        let text = try String(contentsOf: Self.deploy.appendingPathComponent("systemd/\(name)"), encoding: .utf8)
        var settings: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("[") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            settings[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return settings
    }

    @Test func systemdUnitsAndCrontab() throws {
        let help = try runProcess(etlBinary, ["run", "--help"]).stdout
        let service = try unitSettings("etl@.service")
        #expect(service["Type"] == "oneshot")
        #expect(service["TimeoutStopSec"] != nil && service["SuccessExitStatus"] == "10")
        let exec = try #require(service["ExecStart"]).split(separator: " ").map(String.init)
        #expect(exec.dropFirst().first == "run")
        checkFlags(exec, in: help, file: "etl@.service")
        let timer = try unitSettings("etl@.timer")
        #expect(timer["OnCalendar"] != nil && timer["Persistent"] == "true")

        let cron = try String(contentsOf: Self.deploy.appendingPathComponent("cron/etl.cron"), encoding: .utf8)
        let job = try #require(cron.split(separator: "\n").first { !$0.hasPrefix("#") && $0.contains("etl run") })
        #expect(!job.contains("flock"), "etl locks the dataset itself")
        checkFlags(job.split(separator: " ").map(String.init), in: help, file: "etl.cron")
    }
}
