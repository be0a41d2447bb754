import Foundation
import MDS

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
    /// A published version's directory on this machine, when the store is local.
    func localDirectory(of version: String) -> String?
    /// The dataset's append-only record of runs (published, nothing new, failed): what `etl status` shows.
    var runLedger: any RunLedger { get }
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
}

extension DatasetStore {
    public func removeAbandonedStaging() -> [String] { removeAbandonedStaging(keeping: nil) }

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

    /// Writes a built version into a staged one: parent shards shared, index files, the card (README.md), then the manifest.
    public func assemble(_ version: VersionBuilder.Version, into staged: any StagedVersion) throws(DatasetError) {
        for shard in version.shared {
            try staged.share(shard.path, from: shard.fromVersion, expectedBytes: shard.bytes)
        }
        for (path, bytes) in version.indexFiles { try staged.write(bytes, to: path) }
        // The card before the manifest: a version whose manifest exists is complete, README.md included.
        try staged.write(Array(DatasetCard.render(version.manifest).utf8), to: DatasetCard.fileName)
        let manifest: Data
        do { manifest = try version.manifest.encoded() } catch {
            throw DatasetError(.corrupt, path: location, "cannot encode the manifest: \(error)")
        }
        try staged.write(Array(manifest), to: DatasetManifest.fileName)
    }
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

/// Opens the store an output root names. Until object storage exists, a root with a URL scheme is refused rather
/// than taken as a local directory named `s3:`.
public enum DatasetStores {
    public static func open(outputRoot: String, dataset: String) throws(DatasetError) -> any DatasetStore {
        if let scheme = urlScheme(outputRoot) {
            throw DatasetError(.invalidLocation, path: outputRoot,
                               "output_root '\(outputRoot)' is a \(scheme):// URL, and this build of etl writes datasets only to a local directory")
        }
        return LocalDatasetStore(outputRoot: outputRoot, dataset: dataset)
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
