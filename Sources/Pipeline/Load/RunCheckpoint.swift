import Dataset
import MDS
import SystemIO

/// What a run has made durable so far, in its staging directory (`checkpoint.json`): every shard it sealed, how much
/// of quarantine.jsonl and rows.bin belongs to those rows, the cursor of the last row they cover, and the counts. A
/// run that dies (SIGKILL, OOM, a drained node) is resumed from here by the next run of the same pipeline with the same
/// parent: it keeps the sealed shards, cuts the files back, and reads only rows after `cursor`. Checkpoints fall at
/// points fixed by the input (every `shards.checkpoint_every` source bytes, at a change of cursor value), so a resumed
/// run writes exactly the shards an uninterrupted one would.
struct RunCheckpoint: Codable, Equatable {
    static let fileName = "checkpoint.json"
    static let currentFormat = 1

    var format = currentFormat
    var runId: String
    var dataset: String
    /// The version the run builds on; nil for a first or `--full` run.
    var parent: String?
    var configSha256: String
    /// The lower cursor bound the run started from (its exactly-once re-read window) and the snapshot it recorded.
    var revisitAfter: String?
    var snapshot: DatasetManifest.SourceSnapshotRecord
    /// The cursor of the last row covered: the resumed run reads rows after it.
    var cursor: String
    var rowsRead: Int
    var samplesWritten: Int
    var quarantined: Int
    var sourceBytes: Int
    var alreadyPublished: Int
    /// Rows skipped by `dedupe:` so far (absent in checkpoints of runs without dedupe).
    var deduplicated: Int? = nil
    var sealed: [String: [MDSShardEntry]]
    var quarantineBytes: Int
    var quarantineByReason: [String: Int]
    var rowsFileBytes: Int
    var rowsFileCount: Int

    static func read(directory: String) -> RunCheckpoint? {
        guard let bytes = try? FileSystem.readAll("\(directory)/\(fileName)", role: fileName) else { return nil }
        return try? JSONDecoder().decode(RunCheckpoint.self, from: Data(bytes))
    }

    func write(directory: String) throws(DatasetError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(self) else { throw DatasetError(.corrupt, path: directory, "cannot encode the checkpoint") }
        do { try FileSystem.writeAtomically(Array(data), to: "\(directory)/\(Self.fileName)", role: Self.fileName) } catch {
            throw DatasetError(error)
        }
    }
}

import Foundation
