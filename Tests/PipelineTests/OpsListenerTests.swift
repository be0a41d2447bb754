import Dataset
import Foundation
import Logging
@testable import Pipeline
import Testing

/// The pure parts of the run's listeners: exposition text, the progress line, the JSON log line, the run tally.
@Suite struct OpsListenerTests {
    @Test func prometheusTextEscapesAndGroupsFamilies() {
        var text = PrometheusText()
        text.add("etl_x", help: "An x.\nSecond line \\ here.", labels: [("pipeline", "a\"b\\c\nd")], 3)
        text.add("etl_y", help: "A y.", kind: .counter, 0.25)
        text.add("etl_x", help: "ignored", labels: [("pipeline", "p")], 1e20)
        #expect(text.text == """
            # HELP etl_x An x.\\nSecond line \\\\ here.
            # TYPE etl_x gauge
            etl_x{pipeline="a\\"b\\\\c\\nd"} 3
            etl_x{pipeline="p"} 1e+20
            # HELP etl_y A y.
            # TYPE etl_y counter
            etl_y 0.25

            """)
    }

    @Test func lastSuccessIsCarriedOverFromThePreviousFile() {
        let previous = "# HELP etl_last_success_timestamp_seconds x\n# TYPE etl_last_success_timestamp_seconds gauge\netl_last_success_timestamp_seconds{pipeline=\"fb\",dataset=\"fb\"} 1767225600.5\n"
        #expect(MetricsListener.lastSuccess(in: previous) == 1767225600.5)
        #expect(MetricsListener.lastSuccess(in: "") == nil)
    }

    @Test func progressLineWithAndWithoutAnEstimate() {
        var progress = RunProgress()
        progress.rowsRead = 1_250
        progress.samplesWritten = 1_200
        progress.quarantined = 50
        progress.sourceBytes = 5_000_000
        progress.elapsedSeconds = 2.5
        #expect(ProgressBarListener.line(progress, estimatedRows: 2_500, width: 200)
                == "etl: [##########----------]   50%  1,250/~2,500 rows  2.0 MB/s  500 rows/s  1,200 samples  50 quarantined  ETA 0:03")
        #expect(ProgressBarListener.line(progress, estimatedRows: nil, width: 200)
                == "etl: 1,250 rows  2.0 MB/s  500 rows/s  1,200 samples  50 quarantined  elapsed 0:03")
        // Past a low estimate: a full bar, no negative ETA. Cut to the terminal's width so it never wraps.
        #expect(ProgressBarListener.line(progress, estimatedRows: 1_000, width: 200).hasPrefix("etl: [####################]  100%  1,250/~1,000 rows"))
        #expect(ProgressBarListener.line(progress, estimatedRows: 2_500, width: 50).count == 49)
    }

    @Test func jsonLogLineHasTypedFields() throws {
        let line = JSONLogHandler.line(ts: Date(timeIntervalSince1970: 1_767_225_600.25), level: .info, event: "run.progress",
                                       metadata: ["rows_read": .stringConvertible(12), "run_id": "abc", "ok": .stringConvertible(true),
                                                  "by": .dictionary(["x": .stringConvertible(1)])])
        #expect(line == #"{"by":{"x":1},"event":"run.progress","level":"info","ok":true,"rows_read":12,"run_id":"abc","ts":"2026-01-01T00:00:00.250Z"}"# + "\n")
    }

    @Test func aFailureMidRunKeepsTheLastCounts() throws {
        // No `.started`: the run's start is when the listener was made (RunStart has no public init to fake one).
        let start = Date(timeIntervalSince1970: 10)
        var tally = RunTally(createdAt: start)
        tally.record(.planned(estimatedRows: 500), at: start.addingTimeInterval(1))
        var progress = RunProgress()
        progress.rowsRead = 256
        tally.record(.progress(progress), at: start.addingTimeInterval(3))
        let entry = try JSONDecoder().decode(QuarantineEntry.self, from: Data(#"{"key":"7","reason":"null_value","message":"m","column":"label"}"#.utf8))
        tally.record(.quarantined(entry), at: start.addingTimeInterval(3))
        tally.record(.finished(.failed(RunFailureReport(RunInterrupted(signal: SIGTERM)), RunProgress())),
                     at: start.addingTimeInterval(4))
        #expect(tally.progress.rowsRead == 256)
        #expect(tally.stageSeconds == ["prepare": 1, "extract_transform_load": 2])
        let identity = LedgerListener.Identity(name: "fb", dataset: "fb", outputRoot: "/x", configSha256: "abc")
        let record = LedgerListener.record(tally, identity: identity, host: "h", pid: 1) { $0 == .interrupted ? 10 : 1 }
        #expect(record.outcome == .failed && record.exitCode == 10 && record.failure == "interrupted")
        #expect(record.runId == nil && record.startedAt == "1970-01-01T00:00:10.000Z" && record.endedAt == "1970-01-01T00:00:14.000Z")
        #expect(record.rowsRead == 256 && record.quarantinedByReason == ["null_value": 1] && record.durationSeconds == 4)
        #expect(LedgerListener.failureName(.qualityGate) == "quality_gate")
    }

    @Test func theLedgerConnectionGetsATimeoutUnlessItSetsOne() {
        #expect(PostgresLedgerListener.bounded("dbname=ops") == "dbname=ops connect_timeout=10")
        #expect(PostgresLedgerListener.bounded("") == "connect_timeout=10")
        #expect(PostgresLedgerListener.bounded("host=x connect_timeout=3") == "host=x connect_timeout=3")
        #expect(PostgresLedgerListener.bounded("postgresql://h/db") == "postgresql://h/db?connect_timeout=10")
        #expect(PostgresLedgerListener.bounded("postgresql://h/db?sslmode=require") == "postgresql://h/db?sslmode=require&connect_timeout=10")
    }
}
