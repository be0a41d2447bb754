import Foundation
import ObjectStorage
import SystemIO

/// A dataset in S3-compatible object storage, laid out like the local store so that a trainer reads
/// `s3://bucket/prefix/<dataset>/<version>` with mosaicml-streaming as it reads a directory:
///
///     <prefix>/<dataset>/
///       v1/ v2/ …              a version's objects (manifest.json, README.md, <split>/index.json + shards, …)
///       _commits/vN.json       the commit record: its existence is what publishes vN
///       _claims/vN.json        taken by the run that builds vN, before its first upload (one builder per name)
///       _runs/<time>-<id>.json the run ledger: one object per run (S3 has no append)
///       _lock.json             the run lock: a lease with an expiry, renewed while the run lives
///       LATEST                 the newest version's name: derived, repaired like the local one
///
/// S3 has no rename, so publishing is a conditional write instead: every object of the version is uploaded first,
/// then the commit record is written with `If-None-Match: *`. S3 lets exactly one such write of a key succeed, so two
/// runs can never both publish vN, and since `versions()` lists commit records only, a half-uploaded version is never
/// a version. A run claims the name it will publish (also with `If-None-Match: *`) before uploading, so a racing run
/// never writes into the same `vN/` keys: it stops with a conflict at once instead of at the end.
public struct S3DatasetStore: DatasetStore {
    public let dataset: String
    public let root: S3Location
    public let client: S3Client
    /// `<prefix>/<dataset>`: every key of the dataset starts with it and a slash.
    let datasetKey: String

    static let commitsFolder = "_commits"
    static let claimsFolder = "_claims"
    static let runsFolder = "_runs"
    static let lockName = "_lock.json"

    public init(root: S3Location, dataset: String, client: S3Client) {
        self.dataset = dataset
        self.root = root
        self.client = client
        datasetKey = root.key(dataset)
    }

    public var location: String { "s3://\(root.bucket)/\(datasetKey)" }
    var bucket: String { root.bucket }

    /// The key of a path below the dataset, e.g. `v2/train/index.json`.
    func key(_ path: String) -> String { "\(datasetKey)/\(path)" }

    public var runLedger: any RunLedger { S3RunLedger(store: self) }

    public func versions() throws(DatasetError) -> [String] {
        let listed = try s3 { () throws(ObjectStorageError) in try client.list(bucket: bucket, prefix: key("\(Self.commitsFolder)/")) }
        return VersionName.sorted(listed.objects.compactMap { object in
            let name = object.key.split(separator: "/").last.map(String.init) ?? ""
            return name.hasSuffix(".json") ? String(name.dropLast(5)) : nil
        })
    }

    public func read(_ path: String, of version: String) throws(DatasetError) -> [UInt8] {
        do {
            return try client.get(bucket: bucket, key: key("\(version)/\(path)"))
        } catch where error.code == .notFound {
            if (try? client.head(bucket: bucket, key: key("\(Self.commitsFolder)/\(version).json"))) == .some(nil) {
                throw DatasetError(.notFound, path: "\(location)/\(version)", "dataset '\(dataset)' has no version '\(version)'")
            }
            throw DatasetError(.notFound, path: "\(location)/\(version)/\(path)", "\(dataset)@\(version) has no \(path)")
        } catch {
            throw DatasetError(error)
        }
    }

    public func lock(runId: String) throws(DatasetError) -> DatasetLock {
        try S3DatasetLock.acquire(store: self, runId: runId)
    }

    /// What runs that died before their commit record left (call with the lock held, so no live run is building):
    /// objects under a `vN/` that no commit record names (an upload, or a `deleteVersion` cut short), claims, unfinished
    /// multipart uploads, and local work directories. The claim and uploads of run `keeping` stay.
    public func removeAbandonedStaging(keeping runId: String?) -> [String] {
        var removed: [String] = []
        guard let committed = try? Set(versions()),
              let claims = try? client.list(bucket: bucket, prefix: key("\(Self.claimsFolder)/")).objects,
              let folders = try? client.list(bucket: bucket, prefix: key(""), delimiter: "/").commonPrefixes else { return removed }
        var kept: String?
        for claim in claims {
            let version = String((claim.key.split(separator: "/").last ?? "").dropLast(5))
            if let runId, (try? S3Claim.decode(client.get(bucket: bucket, key: claim.key)))?.runId == runId {
                kept = version
                continue
            }
            if (try? client.delete(bucket: bucket, key: claim.key)) != nil, !committed.contains(version) {
                removed.append("\(location)/\(Self.claimsFolder)/\(version).json")
            }
        }
        for folder in folders {
            let version = String(folder.dropFirst(key("").count).dropLast())
            guard VersionName.number(version) != nil, !committed.contains(version), version != kept,
                  let objects = try? client.list(bucket: bucket, prefix: folder).objects,
                  (try? client.delete(bucket: bucket, keys: objects.map(\.key))) != nil else { continue }
            removed.append("\(location)/\(version)/ (\(objects.count) objects no commit record names)")
        }
        if runId == nil {
            // A partition's upload under _runs/ is not a run's debris: partitions run beside a run, without its lock.
            for upload in (try? client.multipartUploads(bucket: bucket, prefix: key(""))) ?? []
            where !upload.key.hasPrefix(key("\(Self.runsFolder)/")) {
                client.abortMultipartUpload(bucket: bucket, key: upload.key, uploadId: upload.uploadId)
                removed.append("an unfinished upload of s3://\(bucket)/\(upload.key)")
            }
        }
        let work = S3StagedVersion.workRoot(for: self)
        for name in ((try? FileSystem.contentsOfDirectory(work)) ?? []) ?? [] where name != runId {
            if (try? FileSystem.removeTree("\(work)/\(name)")) != nil { removed.append("\(work)/\(name)") }
        }
        return removed
    }

    /// A local directory of this dataset's, outside the bucket: `kind` is `staging` (runs' work files) or `scratch`.
    static func localRoot(for store: S3DatasetStore, kind: String) -> String {
        let name = "\(store.root.bucket)-\(store.datasetKey)".map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
        return "\(FileManager.default.temporaryDirectory.path)/etl-s3-\(kind)/\(String(name))"
    }

    public func stageVersion(runId: String) throws(DatasetError) -> any StagedVersion {
        let version = VersionName.next(after: try versions())
        let claim = S3Claim(runId: runId, version: version, host: ProcessInfo.processInfo.hostName, pid: getpid(),
                            claimedAt: ISO8601DateFormatter().string(from: Date()))
        let claimKey = key("\(Self.claimsFolder)/\(version).json")
        let outcome = try s3 { () throws(ObjectStorageError) in try client.put(claim.encoded(), bucket: bucket, key: claimKey, ifNoneMatch: true) }
        // A lost response to our own write comes back as "already exists": the claim is ours if it names this run.
        if outcome == .alreadyExists, (try? S3Claim.decode(client.get(bucket: bucket, key: claimKey)))?.runId != runId {
            let holder = (try? S3Claim.decode(client.get(bucket: bucket, key: claimKey))).map { " (run \($0.runId), pid \($0.pid) on \($0.host), since \($0.claimedAt))" } ?? ""
            throw DatasetError(.conflict, path: "\(location)/\(Self.claimsFolder)/\(version).json",
                               "another run is building \(dataset)@\(version)\(holder); nothing was published, rerun after it finishes")
        }
        return try S3StagedVersion(store: self, runId: runId, version: version)
    }

    public func repairPointers() -> String? {
        guard let latest = try? versions().last else { return nil }
        let current = (try? client.get(bucket: bucket, key: key(LocalDatasetStore.latestFileName)))
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        guard current != latest else { return nil }
        guard (try? client.put(Array("\(latest)\n".utf8), bucket: bucket, key: key(LocalDatasetStore.latestFileName),
                               contentType: "text/plain")) != nil else { return nil }
        return "LATEST now names \(latest)\(current.map { " (it named \($0))" } ?? "")"
    }

    /// Runs a client call, turning its error into the store's.
    func s3<R>(_ body: () throws(ObjectStorageError) -> R) throws(DatasetError) -> R {
        do { return try body() } catch { throw DatasetError(error) }
    }
}

/// Who builds a version: the content of `_claims/vN.json` and, once published, of `_commits/vN.json`.
struct S3Claim: Codable, Equatable {
    var runId: String
    var version: String
    var host: String
    var pid: Int32
    var claimedAt: String
    var committedAt: String?
    var parent: String?

    enum CodingKeys: String, CodingKey {
        case runId = "run_id", version, host, pid, claimedAt = "claimed_at", committedAt = "committed_at", parent
    }

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(self)) ?? Data())
    }

    static func decode(_ bytes: [UInt8]) throws -> S3Claim { try JSONDecoder().decode(S3Claim.self, from: Data(bytes)) }
}

extension DatasetError {
    /// An object-store failure as a store error: an upload that failed for good is a write failure (exit 5), a
    /// missing object is not found, credentials that are missing or refused are the configuration's problem.
    public init(_ error: ObjectStorageError) {
        let code: Code
        switch error.code {
        // A missing bucket is the output root's problem (fix the file), not a missing dataset.
        case .notFound where error.serverCode == "NoSuchBucket": code = .invalidLocation
        // A multipart upload that vanished under the run (aborted by a lifecycle rule or another process): the write failed.
        case .notFound where error.serverCode == "NoSuchUpload": code = .writeFailed
        case .notFound: code = .notFound
        case .preconditionFailed: code = .conflict
        case .credentials: code = .invalidLocation
        case .accessDenied, .transient, .invalidRequest, .localFile: code = .writeFailed
        }
        self.init(code, path: error.location, error.description)
    }
}

/// A version being uploaded. The run's files are written into a local work directory (shard writers need a file
/// system); each sealed file is uploaded by `stage` on background threads while the run goes on, so a run's upload
/// overlaps its extraction. `commit` waits for the uploads, then writes the commit record. A partition's attempt uses
/// the same upload machinery with another folder (`S3DatasetStore+RunArea.swift`), and is completed instead of committed.
final class S3StagedVersion: StagedVersion, @unchecked Sendable {
    let store: S3DatasetStore
    let runId: String
    let version: String
    /// Where the objects go, below the dataset: the version's name, or a partition attempt's folder.
    let folder: String
    let workDirectory: String
    private let uploads = OperationQueue()
    private let lock = NSLock()
    private var uploadFailure: DatasetError?
    private var committed = false

    /// Local work directories of this dataset's runs, one per run id.
    static func workRoot(for store: S3DatasetStore) -> String { S3DatasetStore.localRoot(for: store, kind: "staging") }

    init(store: S3DatasetStore, runId: String, version: String, folder: String? = nil, workDirectory: String? = nil) throws(DatasetError) {
        self.store = store
        self.runId = runId
        self.version = version
        self.folder = folder ?? version
        self.workDirectory = workDirectory ?? "\(Self.workRoot(for: store))/\(runId)"
        uploads.maxConcurrentOperationCount = 2
        do { try FileSystem.createDirectory(self.workDirectory) } catch { throw DatasetError(error) }
    }

    var datasetStore: any DatasetStore { store }

    func objectKey(_ path: String) -> String { store.key("\(folder)/\(path)") }

    func stage(_ path: String) throws(DatasetError) {
        if let failure = lock.withLock({ uploadFailure }) { throw failure }
        let file = "\(workDirectory)/\(path)"
        guard FileSystem.exists(file) else { throw DatasetError(.writeFailed, path: file, "a staged file is missing") }
        let key = objectKey(path)
        uploads.addOperation { [self] in
            guard lock.withLock({ uploadFailure == nil }) else { return }
            do throws(ObjectStorageError) { try store.client.upload(file: file, bucket: store.bucket, key: key) } catch {
                lock.withLock { if uploadFailure == nil { uploadFailure = DatasetError(error) } }
            }
        }
    }

    func write(_ bytes: [UInt8], to path: String) throws(DatasetError) {
        try store.s3 { () throws(ObjectStorageError) in
            try store.client.put(bytes, bucket: store.bucket, key: objectKey(path), contentType: path.hasSuffix(".json") ? "application/json" : "application/octet-stream")
        }
    }

    /// A server-side copy: the parent's bytes do not pass through this process.
    func share(_ path: String, from parentVersion: String, expectedBytes: Int) throws(DatasetError) {
        let source = store.key("\(parentVersion)/\(path)")
        let head = try store.s3 { () throws(ObjectStorageError) in try store.client.head(bucket: store.bucket, key: source) }
        guard let head else {
            throw DatasetError(.corrupt, path: "s3://\(store.bucket)/\(source)", "\(store.dataset)@\(parentVersion) lists \(path), which is missing; run `etl verify` on it")
        }
        guard head.size == expectedBytes else {
            throw DatasetError(.corrupt, path: "s3://\(store.bucket)/\(source)",
                               "\(store.dataset)@\(parentVersion)/\(path) is \(head.size) bytes but its index says \(expectedBytes); it will not be shared into a new version (run `etl verify`)")
        }
        try copyIn(from: source, as: path)
    }

    /// Puts a copy of the object `sourceKey` (checked by the caller) into this version as `path`, on the server.
    func copyIn(from sourceKey: String, as path: String) throws(DatasetError) {
        try store.s3 { () throws(ObjectStorageError) in try store.client.copy(bucket: store.bucket, from: sourceKey, to: objectKey(path)) }
    }

    /// Waits until every staged file is uploaded; the first upload failure, if any.
    func finishUploads() throws(DatasetError) {
        uploads.waitUntilAllOperationsAreFinished()
        if let failure = lock.withLock({ uploadFailure }) { throw failure }
    }

    /// Stops the uploads not started yet and waits for those under way (before their objects are deleted).
    func cancelUploads() {
        uploads.cancelAllOperations()
        uploads.waitUntilAllOperationsAreFinished()
    }

    func commit(as name: String, expectedLatest: String?) throws(DatasetError) {
        try finishUploads()
        let latest = try store.versions().last
        guard latest == expectedLatest, name == version else {
            throw DatasetError(.conflict, path: store.location,
                               "\(latest ?? "a version") was published while this run was going (it started from \(expectedLatest ?? "no version")); nothing was published, rerun to build on it")
        }
        var record = S3Claim(runId: runId, version: version, host: ProcessInfo.processInfo.hostName, pid: getpid(),
                             claimedAt: ISO8601DateFormatter().string(from: Date()))
        record.committedAt = record.claimedAt
        record.parent = expectedLatest
        let commitKey = store.key("\(S3DatasetStore.commitsFolder)/\(version).json")
        let outcome = try store.s3 { () throws(ObjectStorageError) in
            try store.client.put(record.encoded(), bucket: store.bucket, key: commitKey, ifNoneMatch: true, contentType: "application/json")
        }
        if outcome == .alreadyExists, (try? S3Claim.decode(store.client.get(bucket: store.bucket, key: commitKey)))?.runId != runId {
            throw DatasetError(.conflict, path: "\(store.location)/\(S3DatasetStore.commitsFolder)/\(version).json",
                               "another run published \(store.dataset)@\(version) first; nothing was published, rerun to build on it")
        }
        committed = true
        // Published from here on: what follows is tidying, and its failure does not undo the version.
        try? store.client.delete(bucket: store.bucket, key: store.key("\(S3DatasetStore.claimsFolder)/\(version).json"))
        _ = store.repairPointers()
        try? FileSystem.removeTree(workDirectory)
    }

    /// Removes this run's uploads and its claim, unless the claim has passed to another run (then its objects are
    /// that run's). Best effort: what is left, the next run with the lock removes.
    func discard() {
        guard !committed else { return }
        cancelUploads()
        let claimKey = store.key("\(S3DatasetStore.claimsFolder)/\(version).json")
        let commitKey = store.key("\(S3DatasetStore.commitsFolder)/\(version).json")
        if (try? S3Claim.decode(store.client.get(bucket: store.bucket, key: claimKey)))?.runId == runId,
           (try? store.client.head(bucket: store.bucket, key: commitKey)) == .some(nil),
           let objects = try? store.client.list(bucket: store.bucket, prefix: store.key("\(version)/")).objects {
            try? store.client.delete(bucket: store.bucket, keys: objects.map(\.key))
            try? store.client.delete(bucket: store.bucket, key: claimKey)
        }
        try? FileSystem.removeTree(workDirectory)
    }
}
