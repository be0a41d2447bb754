internal import CSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Path-level system calls: directories, renames, links, small files written atomically, durable syncs.
public enum FileSystem {
    /// `mkdir -p`: creates every missing directory of `path`; an existing directory is fine.
    public static func createDirectory(_ path: String) throws(SystemError) {
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            components.append(component)
            let prefix = (path.hasPrefix("/") ? "/" : "") + components.joined(separator: "/")
            if mkdir(prefix, 0o755) != 0 {
                let code = errno
                if code == EEXIST, isDirectory(prefix) { continue }
                throw SystemError("create directory", path: prefix, errno: code == EEXIST ? ENOTDIR : code)
            }
        }
    }

    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// Size of a regular file, nil when it does not exist.
    public static func fileSize(_ path: String) throws(SystemError) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw SystemError("stat", path: path, errno: errno)
        }
        return Int(info.st_size)
    }

    /// The inode number, so tests and `verify` can tell a shared (hard-linked) file from a copy.
    public static func inode(_ path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    /// Names in a directory (no `.` and `..`), unsorted; nil when the directory does not exist.
    public static func contentsOfDirectory(_ path: String) throws(SystemError) -> [String]? {
        guard let directory = opendir(path) else {
            if errno == ENOENT { return nil }
            throw SystemError("list directory", path: path, errno: errno)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public static func rename(_ source: String, to destination: String, role: String) throws(SystemError) {
        guard Glibc.rename(source, destination) == 0 else {
            throw SystemError("rename \(role) \(source) to", path: destination, errno: errno)
        }
    }

    /// Renames only if `destination` does not exist, atomically: of two processes renaming onto one name exactly one
    /// succeeds and the other gets `EEXIST`. This is the local store's compare-and-swap. On a file system without
    /// `RENAME_NOREPLACE` (EINVAL), a directory is claimed by `mkdir` first (atomic too) and then replaced by the
    /// rename, which POSIX allows onto an empty directory.
    public static func renameNoReplace(_ source: String, to destination: String, role: String) throws(SystemError) {
        if etl_rename_noreplace(source, destination) == 0 { return }
        let code = errno
        guard code == EINVAL || code == ENOSYS, isDirectory(source) else {
            throw SystemError("rename \(role) \(source) to", path: destination, errno: code)
        }
        guard mkdir(destination, 0o755) == 0 else { throw SystemError("claim \(role)", path: destination, errno: errno) }
        guard Glibc.rename(source, destination) == 0 else {
            let failure = errno
            rmdir(destination)
            throw SystemError("rename \(role) \(source) to", path: destination, errno: failure)
        }
    }

    /// A hard link: the same bytes under a second name, nothing copied.
    public static func link(_ source: String, to destination: String) throws(SystemError) {
        guard Glibc.link(source, destination) == 0 else { throw SystemError("link \(source) to", path: destination, errno: errno) }
    }

    /// A hard link where the file system allows one (the bytes stored once), else a copy: across file systems
    /// (EXDEV), or where links are refused (EPERM, ENOTSUP) or a file has too many (EMLINK).
    public static func linkOrCopy(_ source: String, to destination: String, role: String) throws(SystemError) {
        do { try link(source, to: destination) } catch {
            guard [EXDEV, EPERM, ENOTSUP, EMLINK].contains(error.errno) else { throw error }
            try copyFile(source, to: destination, role: role)
        }
    }

    /// Copies a file's bytes (for file systems that cannot link), streaming in 1 MiB chunks, then syncs it.
    public static func copyFile(_ source: String, to destination: String, role: String) throws(SystemError) {
        let input = try SystemFile.openForReading(source, role: role)
        var output = try SystemFile.createExclusive(destination, role: role)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var position = 0
        while true {
            let count = try buffer.withSystemMutableBytes { (raw) throws(SystemError) in try input.readSome(into: raw, at: position, untilFull: true) }
            if count == 0 { break }
            try buffer.withSystemBytes { (raw) throws(SystemError) in try output.write(UnsafeRawBufferPointer(rebasing: raw[0..<count])) }
            position += count
        }
        try output.sync()
        try output.close()
    }

    /// Best effort, for cleaning up on the way out of an error.
    public static func removeIfPresent(_ path: String) {
        _ = unlink(path)
    }

    /// Removes a file or a directory tree. A missing path is fine.
    public static func removeTree(_ path: String) throws(SystemError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw SystemError("stat", path: path, errno: errno)
        }
        if info.st_mode & S_IFMT == S_IFDIR {
            for name in try contentsOfDirectory(path) ?? [] { try removeTree(path + "/" + name) }
            guard rmdir(path) == 0 || errno == ENOENT else { throw SystemError("remove directory", path: path, errno: errno) }
        } else {
            guard unlink(path) == 0 || errno == ENOENT else { throw SystemError("remove", path: path, errno: errno) }
        }
    }

    /// Makes renames and new entries in a directory durable: they are only on disk once the directory is synced.
    public static func syncDirectory(_ path: String) throws(SystemError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw SystemError("open directory", path: path, errno: errno) }
        defer { _ = close(descriptor) }
        guard fsync(descriptor) == 0 || errno == EINVAL else { throw SystemError("sync directory", path: path, errno: errno) }
    }

    /// fsync of every file and directory below `root` (itself included), so the rename that publishes it never
    /// exposes unflushed data.
    public static func syncTree(_ root: String) throws(SystemError) {
        if isDirectory(root) {
            for name in try contentsOfDirectory(root) ?? [] { try syncTree(root + "/" + name) }
            try syncDirectory(root)
        } else {
            let descriptor = open(root, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw SystemError("open for fsync", path: root, errno: errno) }
            defer { _ = close(descriptor) }
            guard fsync(descriptor) == 0 || errno == EINVAL else { throw SystemError("sync", path: root, errno: errno) }
        }
    }

    /// Writes a small file (manifest, index, a pointer) under a temporary name, syncs it, renames it into place and
    /// syncs the directory: never half-written, and durable once this returns.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, role: String) throws(SystemError) {
        let directory = parentDirectory(of: path)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let temporary = "\(directory)/.\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        do throws(SystemError) {
            var file = try SystemFile.createExclusive(temporary, role: role)
            try file.write(bytes)
            try file.sync()
            try file.close()
            try rename(temporary, to: path, role: role)
        } catch {
            removeIfPresent(temporary)
            throw SystemError("write \(role)", path: path, errno: error.errno)
        }
        try syncDirectory(directory)
    }

    /// A whole (small) file's bytes; nil when it does not exist.
    public static func readAll(_ path: String, role: String) throws(SystemError) -> [UInt8]? {
        guard exists(path) else { return nil }
        let file = try SystemFile.openForReading(path, role: role)
        let size = try file.size()
        var bytes = [UInt8](repeating: 0, count: size)
        if size > 0 {
            try bytes.withSystemMutableBytes { (buffer) throws(SystemError) in try file.read(into: buffer, at: 0) }
        }
        return bytes
    }

    public static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Whether a directory could be created at `path` and written to, without creating it: the nearest existing
    /// ancestor must be a writable directory. Returns the problem, or nil.
    public static func creatableDirectoryProblem(_ path: String) -> String? {
        var candidate = path
        while true {
            var info = stat()
            if stat(candidate, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFDIR else { return "\(candidate) exists and is not a directory" }
                if access(candidate, W_OK | X_OK) != 0 { return "\(candidate) is not writable: \(SystemError.describe(errno))" }
                // /proc, /sys and read-only mounts pass access() for root but refuse mkdir.
                var fs = statvfs()
                if statvfs(candidate, &fs) == 0, fs.f_flag & UInt(ST_RDONLY) != 0 { return "\(candidate) is on a read-only file system" }
                if candidate.hasPrefix("/proc") || candidate.hasPrefix("/sys") { return "\(candidate) is a kernel file system" }
                return nil
            }
            guard errno == ENOENT || errno == ENOTDIR else { return "cannot reach \(candidate): \(SystemError.describe(errno))" }
            let parent = parentDirectory(of: candidate)
            if parent == candidate { return nil }
            candidate = parent
        }
    }
}
