import Foundation
import SystemIO

/// One run, as the ledger records it: one JSON object per line of `runs.jsonl`. Only ever appended, so it answers
/// "did last night's run happen, and how did it end?" even for runs that published nothing (versions only exist for
/// the runs that did). Never holds a connection string: errors are recorded after redaction.
public struct RunRecord: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable, CaseIterable {
        case published
        case nothingNew = "nothing_new"
        case failed
    }

    /// nil when the run failed before it started (e.g. the lock was held): no run id was handed out.
    public var runId: String?
    public var pipeline: String
    public var dataset: String
    public var configSha256: String
    public var host: String
    public var pid: Int32
    public var startedAt: String
    public var endedAt: String
    public var durationSeconds: Double
    public var outcome: Outcome
    public var exitCode: Int32
    /// The failure category (config, query, quality_gate, interrupted…), nil unless failed.
    public var failure: String?
    public var rowsRead: Int
    /// Rows and bytes the run's last attempt fetched from the source: fewer than `rowsRead` when it resumed from a
    /// checkpoint or skipped rows already published before fetching them. nil in records of an older etl.
    public var rowsFetched: Int?
    public var bytesFetched: Int?
    public var samplesWritten: Int
    /// Rows not written because their `dedupe:` value was published already; nil in records of an older etl.
    public var deduplicated: Int?
    public var quarantined: Int
    public var quarantinedByReason: [String: Int]
    public var bytesRead: Int
    public var bytesWritten: Int
    public var cursorFrom: String?
    /// Where the cursor is after the run: the published version's end, or `cursorFrom` (unchanged) otherwise.
    public var cursorTo: String?
    public var parent: String?
    public var versionPublished: String?
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case runId = "run_id", pipeline, dataset, configSha256 = "config_sha256", host, pid, startedAt = "started_at"
        case endedAt = "ended_at", durationSeconds = "duration_seconds", outcome, exitCode = "exit_code", failure
        case rowsRead = "rows_read", rowsFetched = "rows_fetched", bytesFetched = "bytes_fetched", samplesWritten = "samples_written", quarantined
        case deduplicated
        case quarantinedByReason = "quarantined_by_reason", bytesRead = "bytes_read", bytesWritten = "bytes_written"
        case cursorFrom = "cursor_from", cursorTo = "cursor_to", parent, versionPublished = "version_published", error
    }

    public init(runId: String?, pipeline: String, dataset: String, configSha256: String, host: String, pid: Int32,
                startedAt: String, endedAt: String, durationSeconds: Double, outcome: Outcome, exitCode: Int32,
                failure: String? = nil, rowsRead: Int = 0, rowsFetched: Int? = nil, bytesFetched: Int? = nil, samplesWritten: Int = 0, deduplicated: Int? = nil, quarantined: Int = 0,
                quarantinedByReason: [String: Int] = [:], bytesRead: Int = 0, bytesWritten: Int = 0,
                cursorFrom: String? = nil, cursorTo: String? = nil, parent: String? = nil,
                versionPublished: String? = nil, error: String? = nil) {
        self.runId = runId
        self.pipeline = pipeline
        self.dataset = dataset
        self.configSha256 = configSha256
        self.host = host
        self.pid = pid
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.durationSeconds = durationSeconds
        self.outcome = outcome
        self.exitCode = exitCode
        self.failure = failure
        self.rowsRead = rowsRead
        self.rowsFetched = rowsFetched
        self.bytesFetched = bytesFetched
        self.samplesWritten = samplesWritten
        self.deduplicated = deduplicated
        self.quarantined = quarantined
        self.quarantinedByReason = quarantinedByReason
        self.bytesRead = bytesRead
        self.bytesWritten = bytesWritten
        self.cursorFrom = cursorFrom
        self.cursorTo = cursorTo
        self.parent = parent
        self.versionPublished = versionPublished
        self.error = error
    }

    /// One line: compact JSON with sorted keys (every field present, nulls included, so `jq` filters are simple)
    /// and a trailing newline.
    public func jsonLine() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var object = try JSONSerialization.jsonObject(with: encoder.encode(self)) as! [String: Any]
        for key in [CodingKeys.runId, .rowsFetched, .bytesFetched, .deduplicated, .failure, .cursorFrom, .cursorTo, .parent, .versionPublished, .error] where object[key.rawValue] == nil {
            object[key.rawValue] = NSNull()
        }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return Array(data) + [UInt8(ascii: "\n")]
    }

    /// The records of a ledger's bytes, oldest first. A line that does not decode (a torn write of a process killed
    /// mid-append, or a newer etl's format) is skipped, not fatal: the ledger is a log, not a source of truth.
    public static func decodeLines(_ bytes: [UInt8]) -> [RunRecord] {
        let decoder = JSONDecoder()
        return bytes.split(separator: UInt8(ascii: "\n")).compactMap { line in
            try? decoder.decode(RunRecord.self, from: Data(line))
        }
    }
}

/// Where a dataset's run records are appended. The local store keeps them in `<dataset>/runs.jsonl`; an object store
/// would keep one object per run (no append there), which is why this is a protocol of two calls.
public protocol RunLedger: Sendable {
    /// Appends one record (durable when this returns).
    func append(_ record: RunRecord) throws(DatasetError)
    /// Every record, oldest first; empty when no run was recorded yet.
    func records() throws(DatasetError) -> [RunRecord]
}

/// `runs.jsonl` next to the versions: each record is one `write` on a descriptor opened with O_APPEND, so records
/// of concurrent processes (a run and one that found the lock held) never interleave, then fsync'ed.
public struct LocalRunLedger: RunLedger {
    public static let fileName = "runs.jsonl"
    public let path: String

    public init(path: String) { self.path = path }

    public func append(_ record: RunRecord) throws(DatasetError) {
        let line: [UInt8]
        do { line = try record.jsonLine() } catch {
            throw DatasetError(.writeFailed, path: path, "cannot encode the run record: \(error)")
        }
        do throws(SystemError) {
            try FileSystem.createDirectory(FileSystem.parentDirectory(of: path))
            var file = try SystemFile.openForAppending(path, role: "run ledger")
            try file.write(line)
            try file.sync()
            try file.close()
        } catch { throw DatasetError(error) }
    }

    public func records() throws(DatasetError) -> [RunRecord] {
        let bytes: [UInt8]?
        do { bytes = try FileSystem.readAll(path, role: "run ledger") } catch { throw DatasetError(error, code: .corrupt) }
        return bytes.map(RunRecord.decodeLines) ?? []
    }
}
