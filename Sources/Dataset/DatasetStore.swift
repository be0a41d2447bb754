import Foundation
import MDS
import ObjectStorage

/// Where a dataset's versions live, and everything publishing needs from that place. The local file system is the
/// first implementation; an object store (S3: no rename, no hard link, conditional PUT) is meant to be a second one
/// that changes nothing above this protocol:
/// - a run's files go to a local work directory (shard writers need a file system for their spool and temporary
///   files) and become part of the staged version with `stage` — in place for the local store, an upload for S3;
/// - a parent's shard is `share`d without sending its bytes through this process (hard link, server-side copy);
/// - `commit` publishes the staged version only if no other run published a version since this one started
///   (compare-and-swap): exactly one of two racing runs wins, the other gets `.conflict` and leaves nothing.
public protocol DatasetStore: Sendable {
    var dataset: String { get }
    /// Where the dataset is, for messages: a path or a URL.
    var location: String { get }

    /// Published versions, oldest first.
    func versions() throws(DatasetError) -> [String]
    /// A file of a published version, e.g. `manifest.json` or `train/index.json`.
    func read(_ path: String, of version: String) throws(DatasetError) -> [UInt8]
    /// The run lock: at most one run of a dataset at a time. Fails at once with `.locked` when another run holds it.
    func lock(runId: String) throws(DatasetError) -> DatasetLock
    /// Removes what interrupted runs left behind (call with the lock held), except the staging of run `keeping` (one
    /// being resumed); returns what it removed, for the log.
    func removeAbandonedStaging(keeping runId: String?) -> [String]
    /// A new version under construction, invisible to readers until `commit`.
    func stageVersion(runId: String) throws(DatasetError) -> any StagedVersion
    /// Brings derived pointers (LATEST) in line with the published versions; best effort, returns what it changed.
    func repairPointers() -> String?
    /// The dataset's append-only record of runs (published, nothing new, failed): what `etl status` shows.
    var runLedger: any RunLedger { get }

    // MARK: Reading a published version's files (verify, diff, head, report, forget, a run's parents' rows.bin)

    /// Every file of a published version (paths relative to the version, `/`-separated, sorted). `.notFound` when
    /// the version does not exist. Names only: nothing is read.
    func files(of version: String) throws(DatasetError) -> [VersionFile]
    /// Calls `body` with the path of a local file holding `path` of `version`, readable until `body` returns, so a
    /// file of any size is read in bounded memory (shards are streamed from it). The local store passes its own file
    /// (no copy); an object store downloads into a temporary file that it removes when `body` returns or throws.
    /// `.notFound` when the version does not exist; `.corrupt` when it exists without that file (callers ask for
    /// files its manifest or index lists, so the version is damaged). An error of `body` is rethrown as it is.
    func withLocalFile<Result>(_ path: String, of version: String, _ body: (String) throws -> Result) throws -> Result

    // MARK: Changing published versions (forget, gc): only with the dataset lock held

    /// Whether versions share stored files. True for the local store (a shared shard is one inode, hard-linked into
    /// each version listing it): removing a version frees only the files no other version lists. False for an object
    /// store (`share` is a server-side copy, so each version holds its own copy): removing a version frees all of its
    /// files. Either way removing a version never takes a file away from another version.
    var sharesFilesBetweenVersions: Bool { get }
    /// Creates or replaces a small file of a published version (index.json, manifest.json, README.md,
    /// quarantine.jsonl, rows.bin) in one step: a reader, or a crash, sees the old bytes or the new ones, never a mix.
    func replace(_ path: String, of version: String, with bytes: [UInt8]) throws(DatasetError)
    /// Adds a finished local file (a shard forget rewrote under a new content-addressed name) to a published version
    /// as `path`; `localFile` stays where it is. Local: a hard link (a copy across file systems); object store: an
    /// upload. Nothing is done when the version already holds `path`: names are content-addressed, so it is the same
    /// file, and replaying a journal after a crash stays correct.
    func add(localFile: String, as path: String, to version: String) throws(DatasetError)
    /// Removes one file of a published version; nothing when it is already gone. The bytes stay in every other
    /// version that holds the file (local: its other hard links; object store: their own copies).
    func removeFile(_ path: String, of version: String) throws(DatasetError)
    /// Removes a whole published version (gc). The version first leaves `versions()` in one step (local: a rename out
    /// of the version namespace; object store: manifest.json deleted first), so no reader sees it half-removed; then
    /// its files go. Files it shares with kept versions stay in those. If the process dies half-way, what is left is
    /// not a version, and the next `deleteVersion` or `removeAbandonedStaging` removes it. Derived pointers (LATEST)
    /// are the caller's to repair (`repairPointers`).
    func deleteVersion(_ version: String) throws(DatasetError)

    // MARK: Dataset-level files (pins.json, tombstones.json, the forget journal)

    /// A small file of the dataset itself, next to its versions (not inside one); nil when it does not exist.
    func readDatasetFile(_ name: String) throws(DatasetError) -> [UInt8]?
    /// Creates or replaces a dataset file in one step (old or new bytes, never a mix, also after a crash), durable
    /// once this returns.
    func writeDatasetFile(_ name: String, _ bytes: [UInt8]) throws(DatasetError)
    /// Removes a dataset file; nothing when it does not exist.
    func removeDatasetFile(_ name: String) throws(DatasetError)
    /// Where a dataset file is, for messages.
    func datasetFileLocation(_ name: String) -> String

    // MARK: Scratch space for maintenance work files

    /// A local directory (created if missing, returned as an absolute path) for the work files of a maintenance
    /// operation, e.g. the shards forget rewrites before `add` puts them into versions. It survives a crash of the
    /// process, so an interrupted operation's journal can name files in it; `removeScratch` deletes it. Local store:
    /// `<dataset>/<name>`, on the versions' file system so `add` links instead of copying. An object store may use a
    /// local directory outside the bucket (a journal that names files in it can then only be finished on this machine).
    func scratchDirectory(_ name: String) throws(DatasetError) -> String
    /// Removes every scratch directory whose name starts with `prefix` (work of operations known to be dead).
    func removeScratch(prefix: String)
}

/// One file of a published version, as `DatasetStore.files(of:)` lists it.
public struct VersionFile: Sendable, Equatable {
    /// Relative to the version: `manifest.json`, `train/index.json`, `train/shard.<sha>.mds.zstd`.
    public var path: String
    public var bytes: Int
    /// Identifies the stored bytes when several versions share them: two files with the same non-nil `storage` are
    /// one stored object (local: device and inode of a hard link), so verifying one verifies the other. nil when the
    /// store does not know of any sharing (an object store, where each version holds its own copy).
    public var storage: String?

    public init(path: String, bytes: Int, storage: String? = nil) {
        self.path = path
        self.bytes = bytes
        self.storage = storage
    }
}

/// The run lock of a dataset; released when the value is dropped (and by the kernel if the process dies).
public protocol DatasetLock: AnyObject, Sendable {}

/// A version under construction. Files written into `workDirectory` become part of it with `stage`; `commit`
/// publishes it as one step; `discard` removes it.
public protocol StagedVersion: AnyObject {
    /// A local directory for this run's files (`<split>/shard…`, `quarantine.jsonl`).
    var workDirectory: String { get }
    /// Makes a finished file under `workDirectory` (path relative to it) part of the version.
    func stage(_ path: String) throws(DatasetError)
    /// Writes a small file (index.json, manifest.json) into the version.
    func write(_ bytes: [UInt8], to path: String) throws(DatasetError)
    /// Shares a file of a published version into this one without copying bytes through the process. Refuses a
    /// source whose size differs from `expectedBytes` (a truncated or replaced shard must not spread to new versions).
    func share(_ path: String, from version: String, expectedBytes: Int) throws(DatasetError)
    /// Publishes the staged version as `version` if the newest published version is still `expectedLatest`.
    func commit(as version: String, expectedLatest: String?) throws(DatasetError)
    /// Removes the staged version (after a failure). Best effort.
    func discard()
    /// The store the version is staged in (a run reads the dataset's tombstones through it).
    var datasetStore: any DatasetStore { get }
}

extension DatasetStore {
    public func removeAbandonedStaging() -> [String] { removeAbandonedStaging(keeping: nil) }

    /// `withLocalFile` for several files at once (a run's parents' rows.bin): every one stays readable until `body`
    /// returns. `files` are (version, path) pairs; the local paths come in the same order.
    public func withLocalFiles<Result>(_ files: [(version: String, path: String)], _ body: ([String]) throws -> Result) throws -> Result {
        func open(_ index: Int, _ paths: [String]) throws -> Result {
            guard index < files.count else { return try body(paths) }
            return try withLocalFile(files[index].path, of: files[index].version) { local in try open(index + 1, paths + [local]) }
        }
        return try open(0, [])
    }

    /// Where a file of a version is, for messages (`<location>/<version>/<path>`).
    public func fileLocation(_ path: String, of version: String) -> String { "\(location)/\(version)/\(path)" }

    public var latestVersion: String? { (try? versions())?.last }

    public func manifest(of version: String) throws(DatasetError) -> DatasetManifest {
        let bytes = try read(DatasetManifest.fileName, of: version)
        do { return try DatasetManifest.decode(Data(bytes)) } catch {
            throw DatasetError(.corrupt, path: "\(location)/\(version)/\(DatasetManifest.fileName)",
                               "the manifest of \(dataset)@\(version) cannot be read: \(error)")
        }
    }

    public func index(of version: String, split: String) throws(DatasetError) -> MDSIndex {
        let path = "\(split)/\(MDSIndex.basename)"
        let bytes = try read(path, of: version)
        do { return try JSONDecoder().decode(MDSIndex.self, from: Data(bytes)) } catch {
            throw DatasetError(.corrupt, path: "\(location)/\(version)/\(path)", "\(path) of \(dataset)@\(version) cannot be read: \(error)")
        }
    }

    /// A published version with the index of each of its splits: what a new version builds on.
    public func parent(_ version: String) throws(DatasetError) -> VersionBuilder.Parent {
        let manifest = try manifest(of: version)
        var indexes: [String: MDSIndex] = [:]
        for split in manifest.splits.keys { indexes[split] = try index(of: version, split: split) }
        return VersionBuilder.Parent(manifest: manifest, indexes: indexes)
    }

    /// Where the card's loading snippet loads `version` from: on S3 the version's s3:// URL, which is where a trainer
    /// loads it from; nil (the path under the default output root) for a directory.
    public func cardRemote(of version: String) -> String? {
        (self as? S3DatasetStore).map { "\($0.location)/\(version)" }
    }

    /// Writes a built version into a staged one: parent shards shared, index files, the card (README.md), then the manifest.
    public func assemble(_ version: VersionBuilder.Version, into staged: any StagedVersion) throws(DatasetError) {
        for shard in version.shared {
            try staged.share(shard.path, from: shard.fromVersion, expectedBytes: shard.bytes)
        }
        for (path, bytes) in version.indexFiles { try staged.write(bytes, to: path) }
        // The card before the manifest: a version whose manifest exists is complete, README.md included.
        try staged.write(Array(DatasetCard.render(version.manifest, remote: cardRemote(of: version.manifest.version)).utf8),
                         to: DatasetCard.fileName)
        let manifest: Data
        do { manifest = try version.manifest.encoded() } catch {
            throw DatasetError(.corrupt, path: location, "cannot encode the manifest: \(error)")
        }
        try staged.write(Array(manifest), to: DatasetManifest.fileName)
    }
}

/// An output root holding datasets, each one a `DatasetStore`.
public protocol DatasetRoot: Sendable {
    /// Where the root is, for messages: a path or a URL.
    var location: String { get }
    /// Names of the datasets under the root (names starting with `.` are not datasets), sorted; a name may still
    /// have no published version. `.notFound` when the root does not exist.
    func datasetNames() throws(DatasetError) -> [String]
    /// The store of one dataset under this root.
    func store(_ dataset: String) -> any DatasetStore
}

/// Version names: `v1`, `v2`, … — typed by people, sorted by number.
public enum VersionName {
    public static func number(_ name: String) -> Int? {
        guard name.hasPrefix("v"), let number = Int(name.dropFirst()), number > 0, "v\(number)" == name else { return nil }
        return number
    }

    /// The name after the highest of `existing`.
    public static func next(after existing: [String]) -> String {
        "v\((existing.compactMap(number).max() ?? 0) + 1)"
    }

    public static func sorted(_ names: [String]) -> [String] {
        names.compactMap { name in number(name).map { ($0, name) } }.sorted { $0.0 < $1.0 }.map(\.1)
    }
}

/// Opens the store an output root names: a local directory, or `s3://bucket/prefix` (with `storage` settings from the
/// pipeline's `storage:` section; the environment and the shared AWS files fill in the rest).
public enum DatasetStores {
    public static func open(outputRoot: String, dataset: String, storage: S3StorageOptions = S3StorageOptions()) throws(DatasetError) -> any DatasetStore {
        if urlScheme(outputRoot) != nil {
            let (root, client) = try s3(outputRoot, storage: storage)
            return S3DatasetStore(root: root, dataset: dataset, client: client)
        }
        return LocalDatasetStore(outputRoot: outputRoot, dataset: dataset)
    }

    /// The output root itself, to list its datasets (`etl datasets`).
    public static func openRoot(_ outputRoot: String, storage: S3StorageOptions = S3StorageOptions()) throws(DatasetError) -> any DatasetRoot {
        if urlScheme(outputRoot) != nil {
            let (root, client) = try s3(outputRoot, storage: storage)
            return S3DatasetRoot(root: root, client: client)
        }
        return LocalDatasetRoot(path: outputRoot)
    }

    /// The bucket and prefix of an `s3://` root and a client for it; any other scheme is refused.
    static func s3(_ outputRoot: String, storage: S3StorageOptions) throws(DatasetError) -> (S3Location, S3Client) {
        let scheme = urlScheme(outputRoot) ?? ""
        guard scheme == "s3" else {
            throw DatasetError(.invalidLocation, path: outputRoot,
                               "output_root '\(outputRoot)' is a \(scheme):// URL; etl writes datasets to a local directory or to s3://bucket/prefix")
        }
        guard let root = S3Location(url: outputRoot) else {
            throw DatasetError(.invalidLocation, path: outputRoot,
                               "output_root '\(outputRoot)' is not s3://<bucket>[/<prefix>] with a valid bucket name (3-63 lowercase letters, digits, '-' and '.')")
        }
        let configuration: S3Configuration
        do { configuration = try S3Configuration.resolve(storage) } catch {
            throw DatasetError(.invalidLocation, path: outputRoot, error.message)
        }
        // Tests make multipart uploads happen with small shards (S3's smallest part, 5 MiB, is still the floor).
        let environment = ProcessInfo.processInfo.environment
        let threshold = environment["ETL_TEST_S3_MULTIPART_THRESHOLD"].flatMap { Int($0) } ?? 64 << 20
        let partSize = environment["ETL_TEST_S3_PART_SIZE"].flatMap { Int($0) } ?? 16 << 20
        return (root, S3Client(configuration: configuration, multipartThreshold: threshold, partSize: partSize))
    }

    /// `s3` for `s3://bucket/prefix`; nil for a path (including `./a:b` and Windows-less relative names).
    public static func urlScheme(_ root: String) -> String? {
        guard let range = root.range(of: "://") else { return nil }
        let scheme = root[..<range.lowerBound]
        guard let first = scheme.first, first.isLetter,
              scheme.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == "." }) else { return nil }
        return scheme.lowercased()
    }
}
