import Dataset
import Foundation
import SystemIO

/// Writes the run's figures as a Prometheus text file (`--metrics-file`) when the run finishes, successful or not,
/// for node_exporter's textfile collector. Replaced atomically (temporary file in the same directory, fsync, rename):
/// the collector never reads half a file, and its temporary name (`.<name>.<pid>.<random>.tmp`) does not end in
/// `.prom`, so the collector ignores it. Give each pipeline its own file: one file holds one pipeline's last run.
public final class MetricsListener: RunListener, @unchecked Sendable {
    private let path: String
    private let pipeline: String
    private let dataset: String
    private let exitCode: @Sendable (FailureCategory) -> Int32
    private let warn: @Sendable (String) -> Void
    private let recorder = RunTallyRecorder()

    public init(path: String, pipeline: String, dataset: String, exitCode: @escaping @Sendable (FailureCategory) -> Int32,
                warn: @escaping @Sendable (String) -> Void) {
        self.path = path
        self.pipeline = pipeline
        self.dataset = dataset
        self.exitCode = exitCode
        self.warn = warn
    }

    public func handle(_ event: RunEvent) {
        guard let finished = recorder.record(event) else { return }
        let previous = (try? FileSystem.readAll(path, role: "metrics file")).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) }
        let text = Self.exposition(finished, pipeline: pipeline, dataset: dataset, exitCode: exitCode,
                                   previousLastSuccess: previous.flatMap(Self.lastSuccess(in:)))
        do { try FileSystem.writeAtomically(Array(text.utf8), to: path, role: "metrics file") } catch {
            warn("etl: warning: the metrics file was not written: \(error)")
        }
    }

    /// The file's text (pure). `previousLastSuccess` comes from the file this one replaces, so a failed run keeps
    /// reporting when the pipeline last succeeded — the figure a "no success for 26 hours" alert needs.
    public static func exposition(_ tally: RunTally, pipeline: String, dataset: String, exitCode: (FailureCategory) -> Int32,
                                  previousLastSuccess: Double?) -> String {
        let base = [("pipeline", pipeline), ("dataset", dataset)]
        let ended = (tally.finishedAt ?? Date()).timeIntervalSince1970
        let outcome = tally.outcome ?? .failed
        let succeeded = outcome != .failed
        var m = PrometheusText()
        m.add("etl_run_rows_read", help: "Source rows the last run read (samples + quarantined).", labels: base, Double(tally.progress.rowsRead))
        m.add("etl_run_rows_fetched", help: "Source rows the last run's last attempt fetched: fewer than read when it resumed from a checkpoint or skipped re-read rows already published.",
              labels: base, Double(tally.progress.rowsFetched))
        m.add("etl_run_samples_written", help: "Samples the last run wrote.", labels: base, Double(tally.manifest?.counts.newSamples ?? tally.progress.samplesWritten))
        m.add("etl_run_rows_deduplicated", help: "Rows the last run did not write because their dedupe value was published already.",
              labels: base, Double(tally.manifest?.counts.deduplicated ?? tally.progress.deduplicated))
        let byReason = tally.manifest?.quarantine.byReason ?? tally.quarantinedByReason
        m.add("etl_run_quarantined_rows", help: "Rows the last run quarantined.", labels: base, Double(byReason.values.reduce(0, +)))
        for reason in byReason.keys.sorted() {
            m.add("etl_run_quarantined_rows_by_reason", help: "Rows the last run quarantined, by reason code.",
                  labels: base + [("reason", reason)], Double(byReason[reason]!))
        }
        m.add("etl_run_bytes", help: "Bytes the last run read from the source (in) and wrote as shards (out).",
              labels: base + [("direction", "in")], Double(tally.progress.sourceBytes))
        m.add("etl_run_bytes", help: "", labels: base + [("direction", "out")], Double(tally.manifest?.stats.bytesWritten ?? 0))
        let stages = tally.stageSeconds
        for stage in ["prepare", "extract_transform_load", "publish"] where stages[stage] != nil {
            m.add("etl_run_stage_seconds", help: "Seconds the last run spent per stage.", labels: base + [("stage", stage)], rounded(stages[stage]!))
        }
        m.add("etl_run_duration_seconds", help: "Seconds the last run took, start to end.", labels: base,
              rounded(ended - tally.startedAt.timeIntervalSince1970))
        m.add("etl_run_exit_code", help: "Exit code of the last run (see etl --help).", labels: base,
              Double(tally.failure.map { exitCode($0.category) } ?? 0))
        for candidate in RunRecord.Outcome.allCases {
            m.add("etl_last_run_outcome", help: "1 for the outcome of the last run, 0 for the others.",
                  labels: base + [("outcome", candidate.rawValue)], candidate == outcome ? 1 : 0)
        }
        m.add("etl_last_run_timestamp_seconds", help: "When the last run ended (Unix time).", labels: base, rounded(ended))
        if let lastSuccess = succeeded ? ended : previousLastSuccess {
            m.add("etl_last_success_timestamp_seconds", help: "When a run last ended with success: published or nothing new (Unix time).",
                  labels: base, rounded(lastSuccess))
        }
        return m.text
    }

    /// `etl_last_success_timestamp_seconds` of a file this listener wrote before.
    public static func lastSuccess(in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix("etl_last_success_timestamp_seconds") {
            if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { return value }
        }
        return nil
    }

    private static func rounded(_ seconds: Double) -> Double { (seconds * 1000).rounded() / 1000 }
}
