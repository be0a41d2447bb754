#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns one file descriptor. POSIX calls rather than FileHandle because every failure has to surface with its
/// errno (a full disk must say so, with the path), and FileHandle's write traps or hides errors on some
/// platforms.
struct MDSFile: ~Copyable {
    private(set) var descriptor: Int32
    let path: String
    /// What this file is, for messages: "shard", "temporary sample file", "index".
    let role: String

    private init(descriptor: Int32, path: String, role: String) {
        self.descriptor = descriptor
        self.path = path
        self.role = role
    }

    /// Creates a new file, failing if one exists, so two writers can never share a temporary name.
    static func createExclusive(_ path: String, role: String, readable: Bool = false) throws(ShardError) -> MDSFile {
        let flags = (readable ? O_RDWR : O_WRONLY) | O_CREAT | O_EXCL | O_CLOEXEC
        let descriptor = open(path, flags, 0o644)
        guard descriptor >= 0 else { throw ShardError.io("create \(role)", path: path, errno: errno) }
        return MDSFile(descriptor: descriptor, path: path, role: role)
    }

    static func openForReading(_ path: String, role: String) throws(ShardError) -> MDSFile {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ShardError.io("open \(role)", path: path, errno: errno) }
        return MDSFile(descriptor: descriptor, path: path, role: role)
    }

    deinit {
        if descriptor >= 0 { _ = systemClose(descriptor) }
    }

    /// Writes all of `bytes` at the current position.
    func write(_ bytes: UnsafeRawBufferPointer) throws(ShardError) {
        var offset = 0
        while offset < bytes.count {
            let count = systemWrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                throw ShardError.io("write \(role)", path: path, errno: errno)
            }
            offset += count
        }
    }

    /// Writes all of `bytes` at `position` (the current position does not move).
    func write(_ bytes: UnsafeRawBufferPointer, at position: Int) throws(ShardError) {
        var offset = 0
        while offset < bytes.count {
            let count = pwrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset, off_t(position + offset))
            if count < 0 {
                if errno == EINTR { continue }
                throw ShardError.io("write \(role)", path: path, errno: errno)
            }
            offset += count
        }
    }

    /// Fills `buffer` from `position`; a short file is an error (we only read back what we wrote or sized).
    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int) throws(ShardError) {
        var offset = 0
        while offset < buffer.count {
            let count = pread(descriptor, buffer.baseAddress! + offset, buffer.count - offset, off_t(position + offset))
            if count < 0 {
                if errno == EINTR { continue }
                throw ShardError.io("read \(role)", path: path, errno: errno)
            }
            if count == 0 {
                throw ShardError(.io, path: path, "cannot read \(role) \(path): it ended after \(position + offset) bytes")
            }
            offset += count
        }
    }

    func size() throws(ShardError) -> Int {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw ShardError.io("stat \(role)", path: path, errno: errno) }
        return Int(info.st_size)
    }

    func truncate() throws(ShardError) {
        guard ftruncate(descriptor, 0) == 0 else { throw ShardError.io("truncate \(role)", path: path, errno: errno) }
    }

    func sync() throws(ShardError) {
        guard fsync(descriptor) == 0 else { throw ShardError.io("sync \(role)", path: path, errno: errno) }
    }

    /// Closes now and reports failure: on NFS and some other file systems a deferred write error (e.g. quota)
    /// only shows up here.
    mutating func close() throws(ShardError) {
        let descriptor = self.descriptor
        self.descriptor = -1
        guard descriptor >= 0 else { return }
        guard systemClose(descriptor) == 0 else {
            throw ShardError.io("close \(role)", path: path, errno: errno)
        }
    }

    static func readAll(_ path: String, role: String) throws(ShardError) -> [UInt8] {
        let file = try openForReading(path, role: role)
        let size = try file.size()
        var bytes = [UInt8](repeating: 0, count: size)
        if size > 0 {
            try bytes.withMutableBytes { (buffer) throws(ShardError) in try file.read(into: buffer, at: 0) }
        }
        return bytes
    }

    static func rename(_ source: String, to destination: String, role: String) throws(ShardError) {
        guard systemRename(source, destination) == 0 else {
            throw ShardError.io("rename \(role) \(source) to", path: destination, errno: errno)
        }
    }

    /// Makes a rename durable: the new directory entry is only on disk once the directory itself is synced.
    static func syncDirectory(_ path: String) throws(ShardError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ShardError.io("open directory", path: path, errno: errno) }
        defer { _ = systemClose(descriptor) }
        guard fsync(descriptor) == 0 else { throw ShardError.io("sync directory", path: path, errno: errno) }
    }

    /// Best effort, for cleaning up temporary files on the way out of an error.
    static func removeIfPresent(_ path: String) {
        _ = unlink(path)
    }

    static func createDirectory(_ path: String) throws(ShardError) {
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            components.append(component)
            let prefix = (path.hasPrefix("/") ? "/" : "") + components.joined(separator: "/")
            if mkdir(prefix, 0o755) != 0 {
                let code = errno
                var info = stat()
                if code == EEXIST, stat(prefix, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { continue }
                throw ShardError.io("create directory", path: prefix, errno: code == EEXIST ? ENOTDIR : code)
            }
        }
    }
}

// The bare names `close`, `write` and `rename` resolve to MDSFile's own methods inside it.
private func systemClose(_ descriptor: Int32) -> Int32 { close(descriptor) }
private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, buffer, count)
}
private func systemRename(_ source: String, _ destination: String) -> Int32 { rename(source, destination) }

extension MDSFile {
    func write(_ bytes: [UInt8]) throws(ShardError) {
        try bytes.withBytes { (raw) throws(ShardError) in try write(raw) }
    }
}
