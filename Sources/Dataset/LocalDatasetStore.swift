import Foundation
import SystemIO

/// A dataset in a directory:
///
///     <output_root>/<dataset>/
///       v1/ v2/ …            complete versions (manifest.json, <split>/index.json + shards, quarantine.jsonl)
///       LATEST               the newest version's name: derived, repaired by the next run or reader if stale
///       runs.jsonl           the run ledger: one JSON object per run, appended (RunLedger)
///       pins.json  tombstones.json  .forget-journal.json   dataset files (PinList, Tombstones, ForgetJournal)
///       .lock                held (flock) by the run in progress
///       .staging-<run id>/   a run's version under construction; invisible to readers
///       .forget-<id>/        scratch: shards a forget rewrote, linked into the versions by its journal
///       .gc-<version>-<pid>/ a version being deleted (already out of the version namespace)
///
/// A version becomes visible in one `rename` of its finished, fsynced staging directory onto a name that must not
/// exist yet (`RENAME_NOREPLACE`): that rename is the commit, so of two runs racing for `vN` exactly one wins, and a
/// reader never sees a partial version.
public struct LocalDatasetStore: DatasetStore {
    public let dataset: String
    /// `<output_root>/<dataset>`.
    public let directory: String

    public static let latestFileName = "LATEST"
    static let stagingPrefix = ".staging-"

    public init(outputRoot: String, dataset: String) {
        self.dataset = dataset
        let root = outputRoot.hasSuffix("/") && outputRoot.count > 1 ? String(outputRoot.dropLast()) : outputRoot
        directory = root.isEmpty ? dataset : "\(root)/\(dataset)"
    }

    public var location: String { directory }

    public func versionDirectory(_ version: String) -> String { "\(directory)/\(version)" }

    public var runLedger: any RunLedger { LocalRunLedger(path: "\(directory)/\(LocalRunLedger.fileName)") }

    /// Only `v<N>` directories holding a manifest count: a staging directory, or a claim left by the fallback
    /// commit of a file system without RENAME_NOREPLACE, is not a version.
    public func versions() throws(DatasetError) -> [String] {
        let names: [String]
        do { names = try FileSystem.contentsOfDirectory(directory) ?? [] } catch { throw DatasetError(error, code: .notFound) }
        return VersionName.sorted(names.filter {
            VersionName.number($0) != nil && FileSystem.exists("\(versionDirectory($0))/\(DatasetManifest.fileName)")
        })
    }

    public func read(_ path: String, of version: String) throws(DatasetError) -> [UInt8] {
        let full = "\(versionDirectory(version))/\(path)"
        let bytes: [UInt8]?
        do { bytes = try FileSystem.readAll(full, role: path) } catch { throw DatasetError(error, code: .corrupt) }
        guard let bytes else {
            if !FileSystem.isDirectory(versionDirectory(version)) {
                throw DatasetError(.notFound, path: versionDirectory(version), "dataset '\(dataset)' has no version '\(version)'")
            }
            throw DatasetError(.notFound, path: full, "\(dataset)@\(version) has no \(path)")
        }
        return bytes
    }

    public func lock(runId: String) throws(DatasetError) -> DatasetLock {
        try createDirectory(directory)
        let path = "\(directory)/.lock"
        return try fileLock(at: path, note: "pid \(getpid()), run \(runId), since \(ISO8601DateFormatter().string(from: Date()))",
                            held: "another run holds this dataset's lock")
    }

    /// An flock held until the returned value is dropped (or the process dies); `.locked` at once, with `held` and the
    /// holder's note, when another process holds it. The dataset lock and the partitions' locks are both this.
    func fileLock(at path: String, note: String, held: String) throws(DatasetError) -> DatasetLock {
        do { return LocalLock(try FileLock(path: path, note: note)) } catch {
            switch error {
            case .held(let holder):
                throw DatasetError(.locked, path: path, "\(held)\(holder.isEmpty ? "" : " (\(holder))")")
            case .system(let failure):
                throw DatasetError(failure)
            }
        }
    }

    /// Staging directories of runs that did not finish, oldest name first: candidates for a resume.
    public func stagingDirectories() -> [(runId: String, path: String)] {
        ((try? FileSystem.contentsOfDirectory(directory)) ?? []).filter { $0.hasPrefix(Self.stagingPrefix) }.sorted()
            .map { (String($0.dropFirst(Self.stagingPrefix.count)), "\(directory)/\($0)") }
    }

    public func removeAbandonedStaging(keeping runId: String?) -> [String] {
        let names = (try? FileSystem.contentsOfDirectory(directory)) ?? []
        var removed: [String] = []
        for name in names.sorted() where name != runId.map({ "\(Self.stagingPrefix)\($0)" }) {
            let path = "\(directory)/\(name)"
            // Staging of killed runs, temporary LATEST files, and empty claims of the fallback commit.
            let isClaim = VersionName.number(name) != nil && !FileSystem.exists("\(path)/\(DatasetManifest.fileName)")
                && ((try? FileSystem.contentsOfDirectory(path))??.isEmpty ?? false)
            guard name.hasPrefix(Self.stagingPrefix) || name.hasPrefix(".\(Self.latestFileName).") || name.hasPrefix(Self.trashPrefix)
                || isClaim else { continue }
            if (try? FileSystem.removeTree(path)) != nil { removed.append(name) }
        }
        return removed
    }

    public func stageVersion(runId: String) throws(DatasetError) -> any StagedVersion {
        let path = "\(directory)/\(Self.stagingPrefix)\(runId)"
        try createDirectory(path)
        return LocalStagedVersion(store: self, path: path)
    }

    public func repairPointers() -> String? {
        guard let latest = try? versions().last else { return nil }
        let path = "\(directory)/\(Self.latestFileName)"
        let current = (try? FileSystem.readAll(path, role: "LATEST")).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) }
        guard current?.trimmingCharacters(in: .whitespacesAndNewlines) != latest else { return nil }
        guard (try? FileSystem.writeAtomically(Array("\(latest)\n".utf8), to: path, role: "LATEST")) != nil else { return nil }
        return "LATEST now names \(latest)\(current.map { " (it named \($0.trimmingCharacters(in: .whitespacesAndNewlines)))" } ?? "")"
    }

    func createDirectory(_ path: String) throws(DatasetError) {
        do { try FileSystem.createDirectory(path) } catch { throw DatasetError(error) }
    }
}

private final class LocalLock: DatasetLock, @unchecked Sendable {
    let lock: FileLock
    init(_ lock: FileLock) { self.lock = lock }
}

/// A staging directory next to the versions; its files are written in place, so `stage` has nothing to move.
final class LocalStagedVersion: StagedVersion {
    let store: LocalDatasetStore
    let path: String
    private var committed = false

    init(store: LocalDatasetStore, path: String) {
        self.store = store
        self.path = path
    }

    var workDirectory: String { path }

    var datasetStore: any DatasetStore { store }

    func stage(_ file: String) throws(DatasetError) {
        guard FileSystem.exists("\(path)/\(file)") else {
            throw DatasetError(.writeFailed, path: "\(path)/\(file)", "a staged file is missing")
        }
    }

    func write(_ bytes: [UInt8], to file: String) throws(DatasetError) {
        let target = "\(path)/\(file)"
        do {
            try FileSystem.createDirectory(FileSystem.parentDirectory(of: target))
            try FileSystem.writeAtomically(bytes, to: target, role: file)
        } catch { throw DatasetError(error) }
    }

    /// A hard link; a copy only where the file system cannot link (another device, no link support).
    func share(_ file: String, from version: String, expectedBytes: Int) throws(DatasetError) {
        let source = "\(store.versionDirectory(version))/\(file)"
        let target = "\(path)/\(file)"
        let size: Int?
        do { size = try FileSystem.fileSize(source) } catch { throw DatasetError(error, code: .corrupt) }
        guard let size else {
            throw DatasetError(.corrupt, path: source, "\(store.dataset)@\(version) lists \(file), which is missing; run `etl verify` on it")
        }
        guard size == expectedBytes else {
            throw DatasetError(.corrupt, path: source,
                               "\(store.dataset)@\(version)/\(file) is \(size) bytes but its index says \(expectedBytes); it will not be shared into a new version (run `etl verify`)")
        }
        do throws(SystemError) {
            try FileSystem.createDirectory(FileSystem.parentDirectory(of: target))
            try FileSystem.linkOrCopy(source, to: target, role: "shard")
        } catch { throw DatasetError(error) }
    }

    func commit(as version: String, expectedLatest: String?) throws(DatasetError) {
        let latest = try store.versions().last
        guard latest == expectedLatest else {
            throw DatasetError(.conflict, path: store.directory,
                               "\(latest ?? "a version") was published while this run was going (it started from \(expectedLatest ?? "no version")); nothing was published, rerun to build on it")
        }
        let target = store.versionDirectory(version)
        do {
            try FileSystem.syncTree(path)
            try FileSystem.renameNoReplace(path, to: target, role: "version")
        } catch {
            if error.errno == EEXIST || error.errno == ENOTEMPTY {
                throw DatasetError(.conflict, path: target, "another run published \(store.dataset)@\(version) first; nothing was published, rerun to build on it")
            }
            throw DatasetError(error)
        }
        committed = true
        // The version is published from here on: a failure to sync the parent directory or to update LATEST no
        // longer undoes it (the next run or reader repairs LATEST).
        try? FileSystem.syncDirectory(store.directory)
        _ = store.repairPointers()
    }

    func discard() {
        guard !committed else { return }
        try? FileSystem.removeTree(path)
    }
}
