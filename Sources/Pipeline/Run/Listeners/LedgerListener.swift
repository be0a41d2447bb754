import Dataset
import Foundation
import ObjectStorage
import Postgres

/// Appends one `RunRecord` to the dataset's run ledger when the run finishes — published, nothing new, or failed
/// (including a failure before the lock, e.g. another run holds it). A ledger that cannot be written never fails the
/// run: the problem goes to `warn` (stderr) and the run's own exit code stands.
public final class LedgerListener: RunListener, @unchecked Sendable {
    /// Who the run is, known before it starts (from the pipeline file).
    public struct Identity: Sendable {
        public var pipeline: String
        public var dataset: String
        public var outputRoot: String
        public var configSha256: String
        /// How to reach an `s3://` output root.
        public var storage = S3StorageOptions()
        /// The connection string, so the ledger can scrub it out of an error message (never recorded itself).
        var connection: String

        public init(_ config: PipelineConfig) {
            pipeline = config.name
            dataset = config.dataset
            outputRoot = config.outputRoot
            configSha256 = config.sha256
            storage = config.storage
            connection = config.source.connection
        }

        public init(name: String, dataset: String, outputRoot: String, configSha256: String, connection: String = "") {
            pipeline = name
            self.dataset = dataset
            self.outputRoot = outputRoot
            self.configSha256 = configSha256
            self.connection = connection
        }
    }

    private let identity: Identity
    private let exitCode: @Sendable (FailureCategory) -> Int32
    private let warn: @Sendable (String) -> Void
    private let recorder = RunTallyRecorder()

    /// `exitCode` maps a failure to the CLI's documented code (the table lives with the CLI).
    public init(_ identity: Identity, exitCode: @escaping @Sendable (FailureCategory) -> Int32,
                warn: @escaping @Sendable (String) -> Void) {
        self.identity = identity
        self.exitCode = exitCode
        self.warn = warn
    }

    public func handle(_ event: RunEvent) {
        guard let finished = recorder.record(event) else { return }
        let record = Self.record(finished, identity: identity, host: Self.hostName, pid: getpid(), exitCode: exitCode)
        do {
            let store = try DatasetStores.open(outputRoot: identity.outputRoot, dataset: identity.dataset, storage: identity.storage)
            try store.runLedger.append(record)
        } catch {
            warn("etl: warning: the run was not recorded in the run ledger of \(identity.dataset): \(error)")
        }
    }

    /// The record of a finished run (pure: the tally, who ran it, where).
    public static func record(_ tally: RunTally, identity: Identity, host: String, pid: Int32,
                              exitCode: (FailureCategory) -> Int32) -> RunRecord {
        let ended = tally.finishedAt ?? Date()
        let manifest = tally.manifest
        let failure = tally.failure
        let quarantined = manifest?.quarantine.byReason ?? tally.quarantinedByReason
        return RunRecord(
            runId: tally.start?.runId, pipeline: identity.pipeline, dataset: identity.dataset,
            configSha256: identity.configSha256, host: host, pid: pid,
            startedAt: timestamp(tally.startedAt), endedAt: timestamp(ended),
            durationSeconds: (ended.timeIntervalSince(tally.startedAt) * 1000).rounded() / 1000,
            outcome: tally.outcome ?? .failed, exitCode: failure.map { exitCode($0.category) } ?? 0,
            failure: failure.map { failureName($0.category) },
            rowsRead: tally.progress.rowsRead, rowsFetched: tally.progress.rowsFetched, bytesFetched: tally.progress.bytesFetched,
            samplesWritten: manifest?.counts.newSamples ?? tally.progress.samplesWritten,
            deduplicated: manifest?.counts.deduplicated ?? tally.progress.deduplicated,
            quarantined: quarantined.values.reduce(0, +), quarantinedByReason: quarantined,
            bytesRead: tally.progress.sourceBytes, bytesWritten: manifest?.stats.bytesWritten ?? 0,
            cursorFrom: manifest?.cursor.from ?? tally.start?.cursorFrom,
            cursorTo: manifest?.cursor.to ?? tally.start?.cursorFrom,
            parent: manifest?.parent ?? tally.start?.parent, versionPublished: manifest?.version,
            error: failure.map { scrub($0.message, connection: identity.connection) })
    }

    /// `quality_gate`, not `qualityGate`: the ledger is read by scripts (jq) and people.
    public static func failureName(_ category: FailureCategory) -> String {
        category.rawValue.reduce(into: "") { name, character in
            if character.isUppercase { name += "_" + character.lowercased() } else { name.append(character) }
        }
    }

    /// Errors are redacted where they are made (PostgresError); this is the second line of defence: the connection
    /// string, should a message ever quote it, is replaced by its redacted form.
    static func scrub(_ message: String, connection: String) -> String {
        guard connection.count >= 4, message.contains(connection) else { return message }
        return message.replacingOccurrences(of: connection, with: redactedConninfo(connection))
    }

    static func timestamp(_ date: Date) -> String { ISO8601DateFormatter.withFractionalSeconds.string(from: date) }

    static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return ProcessInfo.processInfo.hostName }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()
}
