import Foundation
import ObjectStorage
import SystemIO

/// Partitioned runs in object storage, laid out like the local store's run area so pods on different machines share
/// one run through the bucket:
///
///     <prefix>/<dataset>/_runs/<run id>/
///       plan.json                      written once (If-None-Match: *), by etl plan
///       partition-<i>.lock.json        the lease of the process working on partition i (or of the commit)
///       partition-<i>/<attempt>/…      one attempt's objects: <split>/shard…, rows.bin, quarantine.jsonl
///       partition-<i>.json             the completion record, written last; names its attempt
///
/// The run ledger's objects sit right under `_runs/` too (`_runs/<time>-<id>.json`), which it lists without
/// descending into these folders. `_runs` is not a version name and holds no commit record, so `versions()`, gc and
/// the staging cleanup never take a run area for a version or its debris. An attempt's files are uploaded as the
/// partition seals them (the upload machinery of `S3StagedVersion`); its local work directory is outside the
/// single runs' one, so a run's cleanup never removes a partition's files.
extension S3DatasetStore: RunArea {
    private func runFolder(_ runId: String) -> String { "\(Self.runsFolder)/\(runId)" }
    private func attemptsFolder(_ index: Int, runId: String) -> String { "\(runFolder(runId))/partition-\(index)" }
    private func attemptFolder(_ index: Int, runId: String, attempt: String) -> String { "\(attemptsFolder(index, runId: runId))/\(attempt)" }
    private func completionPath(_ index: Int, runId: String) -> String { "\(runFolder(runId))/partition-\(index).json" }

    /// Local directories of partitioned runs on this machine: attempts' work files and downloaded partition files.
    private func localRunRoot(_ runId: String) -> String { "\(Self.localRoot(for: self, kind: "runs"))/\(runId)" }

    public func createRun(_ plan: RunPlan) throws(DatasetError) {
        let path = "\(runFolder(plan.runId))/\(RunPlan.fileName)"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(plan) else { throw DatasetError(.corrupt, path: "\(location)/\(path)", "cannot encode the plan") }
        let outcome = try s3 { () throws(ObjectStorageError) in
            try client.put(Array(data), bucket: bucket, key: key(path), ifNoneMatch: true, contentType: "application/json")
        }
        // A lost response to our own write also comes back as "already exists": the same plan is ours.
        if outcome == .alreadyExists, (try? self.plan(ofRun: plan.runId)) != plan {
            throw DatasetError(.conflict, path: "\(location)/\(path)", "run \(plan.runId) of \(dataset) is already planned")
        }
    }

    public func plan(ofRun runId: String) throws(DatasetError) -> RunPlan {
        let path = "\(runFolder(runId))/\(RunPlan.fileName)"
        guard let bytes = try readOptional(path) else {
            throw DatasetError(.notFound, path: "\(location)/\(path)", "dataset '\(dataset)' has no planned run '\(runId)' (etl plan makes one)")
        }
        do { return try JSONDecoder().decode(RunPlan.self, from: Data(bytes)) } catch {
            throw DatasetError(.corrupt, path: "\(location)/\(path)", "the plan of run \(runId) cannot be read: \(error)")
        }
    }

    public func lockPartition(_ index: Int, runId: String) throws(DatasetError) -> DatasetLock {
        // Every process of a run has its run id, so each lease names an owner of its own.
        let owner = "\(runId)/partition-\(index)/\(ProcessInfo.processInfo.hostName)/\(getpid())/\(UUID().uuidString.prefix(8).lowercased())"
        return try S3DatasetLock.acquire(store: self, runId: runId, name: "\(runFolder(runId))/partition-\(index).lock.json", owner: owner,
                                         busy: "partition \(index) of run \(runId) is in use by another process")
    }

    public func stagePartition(_ index: Int, runId: String, attempt: String) throws(DatasetError) -> any StagedVersion {
        let kept = try completion(ofPartition: index, runId: runId)?.attempt
        try removeAttempts(index, runId: runId, except: kept)
        let folder = attemptFolder(index, runId: runId, attempt: attempt)
        // Work files of this partition's earlier attempts on this machine (a killed one's) go too.
        let works = "\(localRunRoot(runId))/partition-\(index)"
        try? FileSystem.removeTree(works)
        let work = "\(works)/\(attempt)"
        let staged = try S3StagedVersion(store: self, runId: runId, version: "partition \(index) of run \(runId)", folder: folder, workDirectory: work)
        let attemptStaging = S3PartitionAttempt(staged)
        S3PartitionAttempt.register(attemptStaging, key: key(folder))
        return attemptStaging
    }

    public func completePartition(_ record: PartitionCompletion) throws(DatasetError) {
        let folder = attemptFolder(record.partition, runId: record.runId, attempt: record.attempt)
        let work = "\(localRunRoot(record.runId))/partition-\(record.partition)/\(record.attempt)"
        // Every file the record names is in the bucket, whole, before the record is: uploads under way finish first,
        // and a file staged by no one (or lost) is uploaded from the work directory or refused.
        if let attempt = S3PartitionAttempt.registered(key: key(folder)) { try attempt.staged.finishUploads() }
        let uploaded = try s3 { () throws(ObjectStorageError) in try client.list(bucket: bucket, prefix: key("\(folder)/")).objects }
        let sizes = Dictionary(uploaded.map { (String($0.key.dropFirst(key("\(folder)/").count)), $0.size) }, uniquingKeysWith: { a, _ in a })
        var named = record.sealed.flatMap { split, entries in entries.map { "\(split)/\($0.storedFile.basename)" } }
        if let rows = record.rowsFile { named.append(rows) }
        if record.quarantine.count > 0 { named.append(record.quarantine.file ?? "quarantine.jsonl") }
        for path in named {
            let local = "\(work)/\(path)"
            let localSize: Int?
            do { localSize = try FileSystem.fileSize(local) } catch { throw DatasetError(error) }
            if let size = sizes[path], localSize == nil || localSize == size { continue }
            guard localSize != nil else {
                throw DatasetError(.writeFailed, path: "\(location)/\(folder)/\(path)",
                                   "partition \(record.partition) of run \(record.runId) lists \(path), which was never uploaded; rerun the partition")
            }
            _ = try s3 { () throws(ObjectStorageError) in try client.upload(file: local, bucket: bucket, key: key("\(folder)/\(path)")) }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(record) else {
            throw DatasetError(.corrupt, path: "\(location)/\(folder)", "cannot encode the completion record")
        }
        // A plain PUT: the partition's lock serialises its writers, and S3 replaces an object in one step.
        try s3 { () throws(ObjectStorageError) in
            try client.put(Array(data), bucket: bucket, key: key(completionPath(record.partition, runId: record.runId)), contentType: "application/json")
        }
        S3PartitionAttempt.unregister(key: key(folder))
        try? FileSystem.removeTree(work)
        // Superseded attempts go now; if this fails, the next attempt's staging or the commit's cleanup removes them.
        try? removeAttempts(record.partition, runId: record.runId, except: record.attempt)
    }

    public func completion(ofPartition index: Int, runId: String) throws(DatasetError) -> PartitionCompletion? {
        let path = completionPath(index, runId: runId)
        guard let bytes = try readOptional(path) else { return nil }
        do { return try JSONDecoder().decode(PartitionCompletion.self, from: Data(bytes)) } catch {
            throw DatasetError(.corrupt, path: "\(location)/\(path)", "the completion record of partition \(index) cannot be read: \(error)")
        }
    }

    public func sharePartitionFile(_ path: String, of record: PartitionCompletion, into staged: any StagedVersion,
                                   expectedBytes: Int) throws(DatasetError) {
        guard let target = staged as? S3StagedVersion, target.store.bucket == bucket else {
            throw DatasetError(.invalidLocation, path: location, "a partition's file can only be shared into a version staged in the same bucket")
        }
        let source = key("\(attemptFolder(record.partition, runId: record.runId, attempt: record.attempt))/\(path)")
        let head = try s3 { () throws(ObjectStorageError) in try client.head(bucket: bucket, key: source) }
        guard let head, head.size == expectedBytes else {
            throw DatasetError(.corrupt, path: "s3://\(bucket)/\(source)", head == nil
                ? "partition \(record.partition) of run \(record.runId) lists \(path), which is missing; rerun the partition"
                : "\(path) of partition \(record.partition) is \(head!.size) bytes but its record says \(expectedBytes); rerun the partition")
        }
        try target.copyIn(from: source, as: path)
    }

    public func localPartitionFile(_ path: String, of record: PartitionCompletion) throws(DatasetError) -> String {
        let source = key("\(attemptFolder(record.partition, runId: record.runId, attempt: record.attempt))/\(path)")
        let local = "\(localRunRoot(record.runId))/files/partition-\(record.partition)/\(record.attempt)/\(path)"
        do throws(SystemError) { try FileSystem.createDirectory(FileSystem.parentDirectory(of: local)) } catch { throw DatasetError(error) }
        do { try client.download(bucket: bucket, key: source, to: local) } catch where error.code == .notFound {
            throw DatasetError(.corrupt, path: "s3://\(bucket)/\(source)",
                               "partition \(record.partition) of run \(record.runId) lists \(path), which is missing; rerun the partition")
        } catch {
            throw DatasetError(error)
        }
        return local
    }

    public func removePartitionOutput(runId: String) {
        // Every attempt's objects; the plan, the completion records and the leases (objects right under the run's
        // folder) stay.
        let prefix = key("\(runFolder(runId))/")
        for folder in (try? client.list(bucket: bucket, prefix: prefix, delimiter: "/").commonPrefixes) ?? [] {
            if let objects = try? client.list(bucket: bucket, prefix: folder).objects { try? client.delete(bucket: bucket, keys: objects.map(\.key)) }
        }
        try? FileSystem.removeTree(localRunRoot(runId))
    }

    /// Deletes the objects of every attempt of a partition but `kept` (attempts of killed processes, superseded ones).
    private func removeAttempts(_ index: Int, runId: String, except kept: String?) throws(DatasetError) {
        let area = key("\(attemptsFolder(index, runId: runId))/")
        let objects = try s3 { () throws(ObjectStorageError) in try client.list(bucket: bucket, prefix: area).objects }
        let doomed = objects.map(\.key).filter { key in kept.map { !key.hasPrefix("\(area)\($0)/") } ?? true }
        guard !doomed.isEmpty else { return }
        try s3 { () throws(ObjectStorageError) in try client.delete(bucket: bucket, keys: doomed) }
    }

    /// An object's bytes, nil when there is no such object.
    private func readOptional(_ path: String) throws(DatasetError) -> [UInt8]? {
        do { return try client.get(bucket: bucket, key: key(path)) } catch where error.code == .notFound {
            if error.serverCode == "NoSuchBucket" { throw DatasetError(error) }
            return nil
        } catch {
            throw DatasetError(error)
        }
    }
}

/// One attempt of a partition: its files are uploaded into the attempt's folder as they are staged; it is made the
/// partition's output by `completePartition` (which waits for its uploads through the registry), never committed.
final class S3PartitionAttempt: StagedVersion, @unchecked Sendable {
    let staged: S3StagedVersion

    init(_ staged: S3StagedVersion) { self.staged = staged }

    var workDirectory: String { staged.workDirectory }
    var datasetStore: any DatasetStore { staged.store }

    func stage(_ path: String) throws(DatasetError) { try staged.stage(path) }
    func write(_ bytes: [UInt8], to path: String) throws(DatasetError) { try staged.write(bytes, to: path) }

    func share(_ path: String, from version: String, expectedBytes: Int) throws(DatasetError) {
        throw DatasetError(.invalidLocation, path: staged.store.location, "a partition's output holds only its own new files; \(path) of \(version) cannot be shared into it")
    }

    func commit(as version: String, expectedLatest: String?) throws(DatasetError) {
        throw DatasetError(.invalidLocation, path: staged.store.location, "a partition is completed (completePartition), not published as \(version)")
    }

    /// Removes this attempt's uploads and work files. Best effort: the next attempt's staging removes what is left.
    func discard() {
        staged.cancelUploads()
        let store = staged.store
        let prefix = staged.objectKey("")
        if let objects = try? store.client.list(bucket: store.bucket, prefix: prefix).objects, !objects.isEmpty {
            try? store.client.delete(bucket: store.bucket, keys: objects.map(\.key))
        }
        Self.unregister(key: String(prefix.dropLast()))
        try? FileSystem.removeTree(staged.workDirectory)
    }

    // The attempts staged by this process, by the key of their folder, so completing one waits for its uploads.
    nonisolated(unsafe) private static var attempts: [String: S3PartitionAttempt] = [:]
    private static let attemptsLock = NSLock()

    static func register(_ attempt: S3PartitionAttempt, key: String) { attemptsLock.withLock { attempts[key] = attempt } }
    static func registered(key: String) -> S3PartitionAttempt? { attemptsLock.withLock { attempts[key] } }
    static func unregister(key: String) { _ = attemptsLock.withLock { attempts.removeValue(forKey: key) } }
}
