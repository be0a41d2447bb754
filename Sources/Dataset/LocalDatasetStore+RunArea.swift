import Foundation
import SystemIO

/// Partitioned runs in the dataset's directory:
///
///     <dataset>/_runs/<run id>/
///       plan.json                  written once (RENAME_NOREPLACE), by etl plan
///       partition-<i>.lock         flock of the process working on partition i (or of the commit)
///       partition-<i>/<attempt>/   one attempt's output: <split>/shard…, rows.bin, quarantine.jsonl
///       partition-<i>.json         the completion record, written last and atomically; names its attempt
///
/// `_runs` is not a version name, so readers, `versions()` and the staging cleanup never look inside. Every file is
/// on the same file system as the versions, so the commit hard-links the partitions' shards into its staging.
extension LocalDatasetStore: RunArea {
    public static let runsDirectoryName = "_runs"

    public func runDirectory(_ runId: String) -> String { "\(directory)/\(Self.runsDirectoryName)/\(runId)" }

    private func partitionDirectory(_ index: Int, runId: String) -> String { "\(runDirectory(runId))/partition-\(index)" }
    private func completionPath(_ index: Int, runId: String) -> String { "\(runDirectory(runId))/partition-\(index).json" }

    public func createRun(_ plan: RunPlan) throws(DatasetError) {
        let folder = runDirectory(plan.runId)
        let target = "\(folder)/\(RunPlan.fileName)"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(plan) else { throw DatasetError(.corrupt, path: target, "cannot encode the plan") }
        let temporary = "\(folder)/.\(RunPlan.fileName).\(getpid())"
        do throws(SystemError) {
            try FileSystem.createDirectory(folder)
            try FileSystem.writeAtomically(Array(data), to: temporary, role: RunPlan.fileName)
            // Two plans with one run id: the first wins, the second learns it (and nothing of the first is replaced).
            do { try FileSystem.renameNoReplace(temporary, to: target, role: RunPlan.fileName) } catch {
                FileSystem.removeIfPresent(temporary)
                throw error
            }
            try FileSystem.syncDirectory(folder)
        } catch {
            if error.errno == EEXIST { throw DatasetError(.conflict, path: target, "run \(plan.runId) of \(dataset) is already planned") }
            throw DatasetError(error)
        }
    }

    public func plan(ofRun runId: String) throws(DatasetError) -> RunPlan {
        let path = "\(runDirectory(runId))/\(RunPlan.fileName)"
        let bytes: [UInt8]?
        do { bytes = try FileSystem.readAll(path, role: RunPlan.fileName) } catch { throw DatasetError(error, code: .corrupt) }
        guard let bytes else {
            throw DatasetError(.notFound, path: path, "dataset '\(dataset)' has no planned run '\(runId)' (etl plan makes one)")
        }
        do { return try JSONDecoder().decode(RunPlan.self, from: Data(bytes)) } catch {
            throw DatasetError(.corrupt, path: path, "the plan of run \(runId) cannot be read: \(error)")
        }
    }

    public func lockPartition(_ index: Int, runId: String) throws(DatasetError) -> DatasetLock {
        try createDirectory(runDirectory(runId))
        let path = "\(runDirectory(runId))/partition-\(index).lock"
        return try fileLock(at: path, note: "pid \(getpid()), since \(ISO8601DateFormatter().string(from: Date()))",
                            held: "partition \(index) of run \(runId) is in use by another process")
    }

    public func stagePartition(_ index: Int, runId: String, attempt: String) throws(DatasetError) -> any StagedVersion {
        let area = partitionDirectory(index, runId: runId)
        let kept = try completion(ofPartition: index, runId: runId)?.attempt
        removeAttempts(in: area, except: kept)
        let path = "\(area)/\(attempt)"
        try createDirectory(path)
        return LocalStagedVersion(store: self, path: path)
    }

    public func completePartition(_ record: PartitionCompletion) throws(DatasetError) {
        let area = partitionDirectory(record.partition, runId: record.runId)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(record) else { throw DatasetError(.corrupt, path: area, "cannot encode the completion record") }
        do {
            try FileSystem.createDirectory("\(area)/\(record.attempt)")
            try FileSystem.syncTree("\(area)/\(record.attempt)")
            try FileSystem.syncDirectory(area)
            try FileSystem.writeAtomically(Array(data), to: completionPath(record.partition, runId: record.runId), role: "completion record")
        } catch { throw DatasetError(error) }
        removeAttempts(in: area, except: record.attempt)
    }

    public func completion(ofPartition index: Int, runId: String) throws(DatasetError) -> PartitionCompletion? {
        let path = completionPath(index, runId: runId)
        let bytes: [UInt8]?
        do { bytes = try FileSystem.readAll(path, role: "completion record") } catch { throw DatasetError(error, code: .corrupt) }
        guard let bytes else { return nil }
        do { return try JSONDecoder().decode(PartitionCompletion.self, from: Data(bytes)) } catch {
            throw DatasetError(.corrupt, path: path, "the completion record of partition \(index) cannot be read: \(error)")
        }
    }

    public func sharePartitionFile(_ path: String, of record: PartitionCompletion, into staged: any StagedVersion,
                                   expectedBytes: Int) throws(DatasetError) {
        let source = try localPartitionFile(path, of: record)
        let target = "\(staged.workDirectory)/\(path)"
        let size: Int?
        do { size = try FileSystem.fileSize(source) } catch { throw DatasetError(error, code: .corrupt) }
        guard size == expectedBytes else {
            throw DatasetError(.corrupt, path: source, size == nil
                ? "partition \(record.partition) of run \(record.runId) lists \(path), which is missing; rerun the partition"
                : "\(path) of partition \(record.partition) is \(size!) bytes but its record says \(expectedBytes); rerun the partition")
        }
        do throws(SystemError) {
            try FileSystem.createDirectory(FileSystem.parentDirectory(of: target))
            try FileSystem.linkOrCopy(source, to: target, role: "shard")
        } catch { throw DatasetError(error) }
        try staged.stage(path)
    }

    public func localPartitionFile(_ path: String, of record: PartitionCompletion) throws(DatasetError) -> String {
        "\(partitionDirectory(record.partition, runId: record.runId))/\(record.attempt)/\(path)"
    }

    public func removePartitionOutput(runId: String) {
        let folder = runDirectory(runId)
        for name in ((try? FileSystem.contentsOfDirectory(folder)) ?? nil) ?? [] where FileSystem.isDirectory("\(folder)/\(name)") {
            try? FileSystem.removeTree("\(folder)/\(name)")
        }
    }

    private func removeAttempts(in area: String, except kept: String?) {
        for name in ((try? FileSystem.contentsOfDirectory(area)) ?? nil) ?? [] where name != kept {
            try? FileSystem.removeTree("\(area)/\(name)")
        }
    }
}

