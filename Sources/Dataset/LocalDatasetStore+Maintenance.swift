import Foundation
import SystemIO

/// What the dataset tools (verify, diff, head, report, forget, gc, pin) need from a local dataset directory:
/// files are read where they are, changed with atomic renames and hard links.
extension LocalDatasetStore {
    static let trashPrefix = ".gc-"

    public func files(of version: String) throws(DatasetError) -> [VersionFile] {
        let root = versionDirectory(version)
        guard FileSystem.isDirectory(root) else {
            throw DatasetError(.notFound, path: root, "dataset '\(dataset)' has no version '\(version)'")
        }
        var files: [VersionFile] = []
        func walk(_ relative: String) throws(SystemError) {
            let directory = relative.isEmpty ? root : "\(root)/\(relative)"
            for name in try FileSystem.contentsOfDirectory(directory) ?? [] {
                let path = relative.isEmpty ? name : "\(relative)/\(name)"
                if FileSystem.isDirectory("\(root)/\(path)") {
                    try walk(path)
                } else if let size = try FileSystem.fileSize("\(root)/\(path)") {
                    files.append(VersionFile(path: path, bytes: size, storage: FileSystem.inode("\(root)/\(path)").map { "inode:\($0)" }))
                }
            }
        }
        do { try walk("") } catch { throw DatasetError(error, code: .corrupt) }
        return files.sorted { $0.path < $1.path }
    }

    /// The file itself: nothing is copied.
    public func withLocalFile<Result>(_ path: String, of version: String, _ body: (String) throws -> Result) throws -> Result {
        let full = "\(versionDirectory(version))/\(path)"
        guard FileSystem.exists(full) else {
            if !FileSystem.isDirectory(versionDirectory(version)) {
                throw DatasetError(.notFound, path: versionDirectory(version), "dataset '\(dataset)' has no version '\(version)'")
            }
            throw DatasetError(.corrupt, path: full, "\(dataset)@\(version) has no \(path); run `etl verify` on it")
        }
        return try body(full)
    }

    public var sharesFilesBetweenVersions: Bool { true }

    public func replace(_ path: String, of version: String, with bytes: [UInt8]) throws(DatasetError) {
        let full = "\(versionDirectory(version))/\(path)"
        do {
            try FileSystem.createDirectory(FileSystem.parentDirectory(of: full))
            try FileSystem.writeAtomically(bytes, to: full, role: path)
        } catch { throw DatasetError(error) }
    }

    /// A hard link; a copy only where the file system cannot link (another device, no link support).
    public func add(localFile: String, as path: String, to version: String) throws(DatasetError) {
        let target = "\(versionDirectory(version))/\(path)"
        guard !FileSystem.exists(target) else { return }
        do throws(SystemError) {
            try FileSystem.createDirectory(FileSystem.parentDirectory(of: target))
            try FileSystem.linkOrCopy(localFile, to: target, role: path)
        } catch { throw DatasetError(error) }
    }

    public func removeFile(_ path: String, of version: String) throws(DatasetError) {
        do { try FileSystem.removeTree("\(versionDirectory(version))/\(path)") } catch { throw DatasetError(error) }
    }

    /// Renamed out of the version namespace (`.gc-<version>-<pid>`), so it disappears from readers at once, then
    /// deleted; the debris of an interrupted deletion is removed first.
    public func deleteVersion(_ version: String) throws(DatasetError) {
        removeDeletionDebris()
        let source = versionDirectory(version)
        guard FileSystem.exists(source) else { return }
        let trash = "\(directory)/\(Self.trashPrefix)\(version)-\(getpid())"
        do {
            try FileSystem.rename(source, to: trash, role: "version")
            try FileSystem.removeTree(trash)
        } catch { throw DatasetError(error) }
        try? FileSystem.syncDirectory(directory)
    }

    /// What an interrupted `deleteVersion` left; returns the names removed.
    @discardableResult
    func removeDeletionDebris() -> [String] {
        var removed: [String] = []
        for name in (((try? FileSystem.contentsOfDirectory(directory)) ?? nil) ?? []).sorted() where name.hasPrefix(Self.trashPrefix) {
            if (try? FileSystem.removeTree("\(directory)/\(name)")) != nil { removed.append(name) }
        }
        return removed
    }

    public func readDatasetFile(_ name: String) throws(DatasetError) -> [UInt8]? {
        do { return try FileSystem.readAll(datasetFileLocation(name), role: name) } catch { throw DatasetError(error, code: .corrupt) }
    }

    public func writeDatasetFile(_ name: String, _ bytes: [UInt8]) throws(DatasetError) {
        do { try FileSystem.writeAtomically(bytes, to: datasetFileLocation(name), role: name) } catch { throw DatasetError(error) }
    }

    public func removeDatasetFile(_ name: String) throws(DatasetError) {
        do { try FileSystem.removeTree(datasetFileLocation(name)) } catch { throw DatasetError(error) }
    }

    public func datasetFileLocation(_ name: String) -> String { "\(directory)/\(name)" }

    /// `<dataset>/<name>` as an absolute path: a journal naming it must still make sense to a later process started
    /// from another working directory.
    public func scratchDirectory(_ name: String) throws(DatasetError) -> String {
        let root = directory.hasPrefix("/") ? directory : "\(FileManager.default.currentDirectoryPath)/\(directory)"
        let path = "\(root)/\(name)"
        try createDirectory(path)
        return path
    }

    public func removeScratch(prefix: String) {
        for name in ((try? FileSystem.contentsOfDirectory(directory)) ?? nil) ?? [] where name.hasPrefix(prefix) {
            try? FileSystem.removeTree("\(directory)/\(name)")
        }
    }
}

/// An output root on the local file system: each directory in it is a dataset.
public struct LocalDatasetRoot: DatasetRoot {
    public let path: String

    public init(path: String) { self.path = path }

    public var location: String { path }

    public func datasetNames() throws(DatasetError) -> [String] {
        let names: [String]?
        do { names = try FileSystem.contentsOfDirectory(path) } catch { throw DatasetError(error, code: .notFound) }
        guard let names else { throw DatasetError(.notFound, path: path, "output root \(path) does not exist") }
        return names.sorted().filter { !$0.hasPrefix(".") && FileSystem.isDirectory("\(path)/\($0)") }
    }

    public func store(_ dataset: String) -> any DatasetStore { LocalDatasetStore(outputRoot: path, dataset: dataset) }
}
