import Foundation
import Testing

/// What a scheduler's operator sees of an unattended run: JSON logs, the Prometheus metrics file, and the progress bar
/// on a terminal.
@Suite("etl run: logs, metrics, progress")
struct OpsObservabilityTests {
    @Test func jsonLogsAreOneObjectPerLine() throws {
        let ws = try Workspace("jsonlog")
        try seedFeedback(ws, count: 30)
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(
            of: "  - name: created_at\n", with: "  - name: created_at\n  - name: label_id\n    from: label\n    label_map: {values: {good: 0, bad: 1}}\n"))
        let result = try ws.etl("run", "fb", "--log-format", "json")
        #expect(result.status == 0, "\(result.output)")
        let lines = result.stderr.split(separator: "\n")
        let objects = try lines.map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        }
        let events = objects.compactMap { $0["event"] as? String }
        #expect(events.count == objects.count)
        #expect(events.first == "run.started" && events.last == "run.finished", "\(events)")
        #expect(events.contains("run.planned") && events.contains("run.shard_sealed") && events.contains("run.progress"))
        #expect(!events.contains("run.quarantined"), "per-row records are debug")
        let runId = try ws.manifest("fb", "v1").runId
        for object in objects {
            #expect(object["run_id"] as? String == runId)
            #expect(object["pipeline"] as? String == "fb")
            #expect((object["ts"] as? String).flatMap { ISO8601DateFormatter.fractional.date(from: $0) } != nil, "\(object)")
            #expect(["info", "notice"].contains(object["level"] as? String))
        }
        let finished = try #require(objects.last)
        #expect(finished["outcome"] as? String == "published" && finished["version"] as? String == "v1")
        #expect(finished["rows_read"] as? Int == 30 && finished["samples_written"] as? Int == 20 && finished["quarantined"] as? Int == 10)
        #expect((finished["quarantined_by_reason"] as? [String: Int]) == ["unmapped_label": 10])
        #expect(finished["cursor_to"] as? String == "30")
    }

    @Test func jsonLogsOfAFailureHaveNoPlainLines() throws {
        let ws = try Workspace("jsonfail")
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "source:\n", with: "source:\n  connection: \"host=127.0.0.1 port=1 dbname=x connect_timeout=3\"\n"))
        let result = try ws.etl("run", "fb", "--log-format", "json")
        #expect(result.status == 3, "\(result.output)")
        let objects = try result.stderr.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        }
        let finished = try #require(objects.last)
        #expect(finished["event"] as? String == "run.finished" && finished["level"] as? String == "error")
        #expect(finished["failure"] as? String == "unreachable" && finished["retryable"] as? Bool == true)
        #expect((finished["message"] as? String)?.contains("127.0.0.1") == true)

        try ws.writePipeline("bad", "name: bad\nsource: {}\n")
        let invalid = try ws.etl("run", "bad", "--log-format", "json")
        #expect(invalid.status == 2, "\(invalid.output)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(invalid.stderr.utf8)) as? [String: Any], "\(invalid.stderr)")
        #expect(object["event"] as? String == "run.finished" && object["failure"] as? String == "config")
        #expect((object["message"] as? String)?.contains("missing required key 'source.query'") == true)
    }

    /// A tiny parser of the Prometheus text format: `name{labels} value` lines, HELP/TYPE comments checked to come
    /// first for each family.
    struct Exposition {
        var samples: [String: Double] = [:]  // "name{a=\"x\",b=\"y\"}" as written → value
        var types: [String: String] = [:]

        init(_ text: String) throws {
            #expect(text.hasSuffix("\n"))
            var helped: Set<String> = []
            for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                if line.hasPrefix("# HELP ") {
                    helped.insert(String(line.dropFirst(7).prefix { $0 != " " }))
                } else if line.hasPrefix("# TYPE ") {
                    let parts = line.dropFirst(7).split(separator: " ")
                    try #require(parts.count == 2 && ["gauge", "counter"].contains(parts[1]), "bad TYPE line: \(line)")
                    types[String(parts[0])] = String(parts[1])
                } else {
                    let cut = try #require(line.lastIndex(of: " "), "bad sample line: \(line)")
                    let series = String(line[..<cut])
                    let name = String(series.prefix { $0 != "{" })
                    try #require(name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "bad name in \(line)")
                    try #require(helped.contains(name) && types[name] != nil, "\(name) has a sample before its HELP/TYPE")
                    try #require(samples[series] == nil, "duplicate series \(series)")
                    let value: Double = try #require(Double(String(line[line.index(after: cut)...])), "bad value in \(line)")
                    samples[series] = value
                }
            }
        }

        subscript(_ series: String) -> Double? { samples[series] }
    }

    @Test func metricsFileIsWrittenAtTheEndOfEveryRun() throws {
        let ws = try Workspace("metrics")
        try seedFeedback(ws, count: 30)
        let pipeline = basicPipeline.replacingOccurrences(
            of: "  - name: created_at\n", with: "  - name: created_at\n  - name: label_id\n    from: label\n    label_map: {values: {good: 0, bad: 1}}\n")
        try ws.writePipeline("fb", pipeline)
        let textfiles = ws.directory.appendingPathComponent("textfile")
        try FileManager.default.createDirectory(at: textfiles, withIntermediateDirectories: true)
        let path = textfiles.appendingPathComponent("etl_fb.prom")
        let before = Date().timeIntervalSince1970

        #expect(try ws.etl("run", "fb", "--metrics-file", path.path).status == 0)
        let first = try Exposition(String(contentsOf: path, encoding: .utf8))
        let manifest = try ws.manifest("fb", "v1")
        let l = #"pipeline="fb",dataset="fb""#
        #expect(first["etl_run_rows_read{\(l)}"] == 30)
        #expect(first["etl_run_rows_fetched{\(l)}"] == 30)
        #expect(first["etl_run_rows_deduplicated{\(l)}"] == 0)
        #expect(first["etl_run_samples_written{\(l)}"] == 20)
        #expect(first["etl_run_quarantined_rows{\(l)}"] == 10)
        #expect(first["etl_run_quarantined_rows_by_reason{\(l),reason=\"unmapped_label\"}"] == 10)
        #expect(first["etl_run_bytes{\(l),direction=\"in\"}"] == Double(manifest.stats.sourceBytes))
        #expect(first["etl_run_bytes{\(l),direction=\"out\"}"] == Double(manifest.stats.bytesWritten))
        for stage in ["prepare", "extract_transform_load", "publish"] {
            let seconds = try #require(first["etl_run_stage_seconds{\(l),stage=\"\(stage)\"}"], "no \(stage) stage")
            #expect(seconds >= 0 && seconds < 60)
        }
        #expect(first["etl_last_run_outcome{\(l),outcome=\"published\"}"] == 1)
        #expect(first["etl_last_run_outcome{\(l),outcome=\"failed\"}"] == 0)
        #expect(first["etl_run_exit_code{\(l)}"] == 0)
        let success = try #require(first["etl_last_success_timestamp_seconds{\(l)}"])
        #expect(success >= before.rounded(.down) && success <= Date().timeIntervalSince1970)
        #expect(first.types["etl_run_rows_read"] == "gauge")

        // A failed run replaces the file and still says when the last success was.
        try ws.writePipeline("fb", pipeline.replacingOccurrences(of: "FROM $S.feedback", with: "FROM $S.nope"))
        #expect(try ws.etl("run", "fb", "--metrics-file", path.path).status == 4)
        let second = try Exposition(String(contentsOf: path, encoding: .utf8))
        #expect(second["etl_last_run_outcome{\(l),outcome=\"failed\"}"] == 1)
        #expect(second["etl_last_run_outcome{\(l),outcome=\"published\"}"] == 0)
        #expect(second["etl_run_exit_code{\(l)}"] == 4)
        #expect(second["etl_last_success_timestamp_seconds{\(l)}"] == success)
        #expect(second["etl_run_rows_read{\(l)}"] == 0)
        #expect((second["etl_last_run_timestamp_seconds{\(l)}"] ?? 0) >= success)
        // Written under a temporary name and renamed: nothing but the file is left in its directory.
        #expect(try FileManager.default.contentsOfDirectory(atPath: textfiles.path) == ["etl_fb.prom"])
    }

    /// Atomic replacement, watched from outside: a reader polling the file while runs rewrite it only ever sees a
    /// whole file, and a descriptor opened on the old file still reads the old file whole afterwards (a rename
    /// replaces the name; a rewrite in place would truncate what the descriptor sees). Inode numbers are not compared:
    /// a freed inode is reused at once.
    @Test func metricsFileIsReplacedNotRewritten() throws {
        let ws = try Workspace("metricsatomic")
        try seedFeedback(ws, count: 5)
        try ws.writePipeline("fb", basicPipeline)
        let path = ws.directory.appendingPathComponent("etl_fb.prom").path
        #expect(try ws.etl("run", "fb", "--metrics-file", path).status == 0)
        let original = try String(contentsOfFile: path, encoding: .utf8)
        let held = try #require(FileHandle(forReadingAtPath: path))
        defer { try? held.close() }
        final class Flag: @unchecked Sendable {
            private let lock = NSLock()
            private var value = false
            var isSet: Bool { lock.withLock { value } }
            func set() { lock.withLock { value = true } }
        }
        nonisolated(unsafe) var partial: [String] = []
        let stop = Flag()
        let watcher = Thread {
            while !stop.isSet {
                if let text = try? String(contentsOfFile: path, encoding: .utf8), !text.contains("etl_last_success_timestamp_seconds{") {
                    partial.append(text)
                }
            }
        }
        watcher.start()
        for _ in 0..<3 { #expect(try ws.etl("run", "fb", "--metrics-file", path).status == 0) }
        stop.set()
        while !watcher.isFinished { usleep(1000) }
        #expect(partial.isEmpty, "saw a partial file: \(partial.first ?? "")")
        #expect(String(decoding: held.readDataToEndOfFile(), as: UTF8.self) == original)
        #expect(try String(contentsOfFile: path, encoding: .utf8) != original, "the runs rewrote the file (new timestamps)")
    }

    /// Under a pseudo-terminal (util-linux `script`), stderr is a TTY: the bar redraws one line with `\r` and ends with
    /// the final figures on their own line.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "needs util-linux script"))
    func progressBarOnATerminal() throws {
        let ws = try Workspace("tty")
        // Enough rows to stream for a few seconds (progress comes every 256 rows and, on a TTY, every 0.25 s at most).
        try seedFeedback(ws, count: 150_000)
        try ws.writePipeline("fb", basicPipeline.replacingOccurrences(of: "size_limit: 4KiB", with: "size_limit: 1MiB"))
        let typescript = ws.directory.appendingPathComponent("typescript").path
        let command = "cd '\(ws.directory.path)' && '\(etlBinary)' run fb"
        let result = try runProcess("/usr/bin/script", ["-q", "-f", "-e", "-c", command, typescript], environment: ["TERM": "xterm", "COLUMNS": "200"])
        #expect(result.status == 0, "\(result.output)")
        let captured = try String(contentsOfFile: typescript, encoding: .utf8)
        let redraws = captured.components(separatedBy: "\retl: ").count - 1
        #expect(redraws >= 3, "expected several in-place updates: \(captured.debugDescription)")
        #expect(captured.contains("rows/s") && captured.contains("MB/s") && captured.contains("quarantined"))
        // The last drawing holds the final counts, and its line is ended (the terminal may turn "\n" into "\r\n").
        let lastBar = try #require(captured.components(separatedBy: "\retl: ").last)
        let barLine = try #require(lastBar.components(separatedBy: "\u{1B}[K").first)
        #expect(barLine.contains("150,000 samples") && barLine.contains(" 0 quarantined"), "\(barLine.debugDescription)")
        #expect(lastBar.hasPrefix(barLine + "\u{1B}[K\r\n") || lastBar.hasPrefix(barLine + "\u{1B}[K\n"), "\(lastBar.debugDescription)")
        #expect(captured.contains("published fb/v1"))
    }

    @Test func noBarWhenStderrIsNotATerminal() throws {
        let ws = try Workspace("notty")
        try seedFeedback(ws, count: 10)
        try ws.writePipeline("fb", basicPipeline)
        let result = try ws.etl("run", "fb")
        #expect(result.status == 0)
        #expect(!result.stderr.contains("\r") && !result.stderr.contains("\u{1B}"), "\(result.stderr.debugDescription)")
    }
}

extension ISO8601DateFormatter {
    nonisolated(unsafe) static let fractional: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}
