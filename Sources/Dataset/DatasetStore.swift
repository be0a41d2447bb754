import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The on-disk layout of one dataset:
///
///     <output_root>/<dataset>/
///       v1/ v2/ …            complete versions (manifest.json, <split>/index.json + shards, quarantine.jsonl)
///       LATEST               the newest version's name, replaced atomically (a convenience: the truth is the listing)
///       .lock                held (flock) by the run in progress
///       .staging-<run id>/   a run's version under construction; invisible to readers, removed on failure
///
/// A version becomes visible in one rename of its finished staging directory, so readers never see a partial one.
public struct DatasetStore: Sendable {
    public let directory: URL
    public let dataset: String

    public init(outputRoot: String, dataset: String) {
        self.dataset = dataset
        self.directory = URL(fileURLWithPath: outputRoot, isDirectory: true).appendingPathComponent(dataset, isDirectory: true)
    }

    /// Published versions, oldest first. Only names `v<N>` holding a manifest count.
    public func versions() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard let number = Self.versionNumber(name),
                  FileManager.default.fileExists(atPath: versionDirectory(name).appendingPathComponent(DatasetManifest.fileName).path)
            else { return nil }
            return (number, name)
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    public var latestVersion: String? { versions().last }

    public func versionDirectory(_ version: String) -> URL {
        directory.appendingPathComponent(version, isDirectory: true)
    }

    public func manifest(of version: String) throws(DatasetStoreError) -> DatasetManifest {
        let url = versionDirectory(version).appendingPathComponent(DatasetManifest.fileName)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw DatasetStoreError(.notFound, path: url.path, "dataset '\(dataset)' has no version '\(version)'")
        }
        do { return try DatasetManifest.decode(data) } catch {
            throw DatasetStoreError(.corrupt, path: url.path, "manifest of \(dataset)@\(version) cannot be read: \(error)")
        }
    }

    /// The name after the highest version ever published here.
    public func nextVersionName() -> String {
        "v\((versions().compactMap(Self.versionNumber).max() ?? 0) + 1)"
    }

    static func versionNumber(_ name: String) -> Int? {
        guard name.hasPrefix("v"), let number = Int(name.dropFirst()), number > 0, "v\(number)" == name else { return nil }
        return number
    }

    /// Takes the dataset's run lock without waiting: a second cron run must fail fast, not queue up behind the first.
    /// The kernel drops the lock when the process dies, so a killed run never wedges the next one.
    public func lock(runId: String) throws(DatasetStoreError) -> DatasetLock {
        try createDirectory(directory)
        return try DatasetLock(path: directory.appendingPathComponent(".lock").path, runId: runId)
    }

    /// A new, empty staging directory for a run. Call with the lock held.
    public func makeStaging(runId: String) throws(DatasetStoreError) -> URL {
        let staging = directory.appendingPathComponent(".staging-\(runId)", isDirectory: true)
        try createDirectory(staging)
        return staging
    }

    /// Removes what killed runs left behind. Only safe with the lock held (no run can be writing them).
    @discardableResult
    public func removeStaleStaging() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let stale = names.filter { $0.hasPrefix(".staging-") || $0.hasPrefix(".LATEST.") }
        for name in stale { try? FileManager.default.removeItem(at: directory.appendingPathComponent(name)) }
        return stale
    }

    public func discardStaging(_ staging: URL) {
        try? FileManager.default.removeItem(at: staging)
    }

    /// Makes a finished staging directory the version `name`: everything in it is flushed to disk first, then one
    /// rename publishes it, then LATEST is replaced. A crash before the rename leaves only staging debris.
    public func publish(staging: URL, as name: String) throws(DatasetStoreError) {
        let target = versionDirectory(name)
        guard !FileManager.default.fileExists(atPath: target.path) else {
            throw DatasetStoreError(.writeFailed, path: target.path, "version \(name) already exists")
        }
        try syncTree(staging)
        guard rename(staging.path, target.path) == 0 else {
            throw DatasetStoreError(.writeFailed, path: target.path, "cannot publish version \(name): \(describeErrno(errno))")
        }
        try syncDirectory(directory)
        try writeAtomically(Data("\(name)\n".utf8), to: directory.appendingPathComponent("LATEST"))
    }

    /// Shares a parent's shard with a new version without copying its bytes (a hard link). Copies only when the
    /// filesystem cannot link (e.g. across devices).
    public func shareFile(_ source: URL, at destination: URL) throws(DatasetStoreError) {
        if link(source.path, destination.path) == 0 { return }
        let linkError = errno
        guard linkError == EXDEV || linkError == EPERM || linkError == ENOTSUP || linkError == EMLINK else {
            throw DatasetStoreError(.writeFailed, path: destination.path, "cannot link \(source.path): \(describeErrno(linkError))")
        }
        do { try FileManager.default.copyItem(at: source, to: destination) } catch {
            throw DatasetStoreError(.writeFailed, path: destination.path, "cannot copy \(source.path): \(error.localizedDescription)")
        }
    }

    public func createDirectory(_ url: URL) throws(DatasetStoreError) {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw DatasetStoreError(.writeFailed, path: url.path, "cannot create directory: \(error.localizedDescription)")
        }
    }
}

/// Writes a small file (manifest, index, LATEST) via a temporary name, fsync and rename: never half-written.
public func writeAtomically(_ data: Data, to url: URL) throws(DatasetStoreError) {
    let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString)")
    let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
        throw DatasetStoreError(.writeFailed, path: url.path, "cannot create \(temporary.lastPathComponent): \(describeErrno(errno))")
    }
    var failure: Int32 = 0
    data.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                failure = errno
                return
            }
            offset += written
        }
    }
    if failure == 0 && fsync(fd) != 0 { failure = errno }
    if close(fd) != 0 && failure == 0 { failure = errno }
    if failure == 0 && rename(temporary.path, url.path) != 0 { failure = errno }
    if failure != 0 {
        unlink(temporary.path)
        throw DatasetStoreError(.writeFailed, path: url.path, "cannot write \(url.lastPathComponent): \(describeErrno(failure))")
    }
}

/// fsync of every file and directory below `root`, so the rename that publishes it never exposes unflushed data.
func syncTree(_ root: URL) throws(DatasetStoreError) {
    let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isDirectoryKey])
    var paths = [root.path]
    while let url = enumerator?.nextObject() as? URL { paths.append(url.path) }
    for path in paths {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DatasetStoreError(.writeFailed, path: path, "cannot open for fsync: \(describeErrno(errno))") }
        defer { close(fd) }
        if fsync(fd) != 0 && errno != EINVAL {
            throw DatasetStoreError(.writeFailed, path: path, "fsync failed: \(describeErrno(errno))")
        }
    }
}

func syncDirectory(_ url: URL) throws(DatasetStoreError) {
    let fd = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw DatasetStoreError(.writeFailed, path: url.path, "cannot open directory: \(describeErrno(errno))") }
    defer { close(fd) }
    if fsync(fd) != 0 && errno != EINVAL {
        throw DatasetStoreError(.writeFailed, path: url.path, "fsync failed: \(describeErrno(errno))")
    }
}

/// The run lock of one dataset. Releasing is closing the descriptor, which also happens if the process dies.
public final class DatasetLock: @unchecked Sendable {
    private let fd: Int32
    public let path: String

    init(path: String, runId: String) throws(DatasetStoreError) {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DatasetStoreError(.writeFailed, path: path, "cannot open lock file: \(describeErrno(errno))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            if code == EWOULDBLOCK {
                throw DatasetStoreError(.locked, path: path, "another run holds this dataset's lock\(holder.isEmpty ? "" : " (\(holder))")")
            }
            throw DatasetStoreError(.writeFailed, path: path, "cannot lock: \(describeErrno(code))")
        }
        // Who holds it, for the message the next run prints while this one is going.
        let note = "pid \(getpid()), run \(runId), since \(ISO8601DateFormatter().string(from: Date()))\n"
        _ = ftruncate(fd, 0)
        _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit {
        _ = ftruncate(fd, 0)
        close(fd)
    }
}
