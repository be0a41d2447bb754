#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns one file descriptor. POSIX calls rather than FileHandle because every failure has to surface with its
/// errno (a full disk must say so, with the path), and FileHandle's write traps or hides errors on some platforms.
public struct SystemFile: ~Copyable {
    public private(set) var descriptor: Int32
    public let path: String
    /// What this file is, for messages: "shard", "temporary sample file", "index".
    public let role: String

    private init(descriptor: Int32, path: String, role: String) {
        self.descriptor = descriptor
        self.path = path
        self.role = role
    }

    /// Creates a new file, failing if one exists, so two writers can never share a temporary name.
    public static func createExclusive(_ path: String, role: String, readable: Bool = false) throws(SystemError) -> SystemFile {
        let flags = (readable ? O_RDWR : O_WRONLY) | O_CREAT | O_EXCL | O_CLOEXEC
        let descriptor = open(path, flags, 0o644)
        guard descriptor >= 0 else { throw SystemError("create \(role)", path: path, errno: errno) }
        return SystemFile(descriptor: descriptor, path: path, role: role)
    }

    /// Opens (creating if needed) for appending, e.g. a ledger or a quarantine file.
    public static func openForAppending(_ path: String, role: String) throws(SystemError) -> SystemFile {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw SystemError("open \(role)", path: path, errno: errno) }
        return SystemFile(descriptor: descriptor, path: path, role: role)
    }

    public static func openForReading(_ path: String, role: String) throws(SystemError) -> SystemFile {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw SystemError("open \(role)", path: path, errno: errno) }
        return SystemFile(descriptor: descriptor, path: path, role: role)
    }

    deinit {
        if descriptor >= 0 { _ = systemClose(descriptor) }
    }

    /// Writes all of `bytes` at the current position.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            let count = systemWrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError("write \(role)", path: path, errno: errno)
            }
            offset += count
        }
    }

    public func write(_ bytes: [UInt8]) throws(SystemError) {
        try bytes.withSystemBytes { (raw) throws(SystemError) in try write(raw) }
    }

    /// Writes all of `bytes` at `position` (the current position does not move).
    public func write(_ bytes: UnsafeRawBufferPointer, at position: Int) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            let count = pwrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset, off_t(position + offset))
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError("write \(role)", path: path, errno: errno)
            }
            offset += count
        }
    }

    /// Fills `buffer` from `position`; a file that ends first is an error (callers read back what they wrote or sized).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int) throws(SystemError) {
        let count = try readSome(into: buffer, at: position, untilFull: true)
        guard count == buffer.count else { throw SystemError("read \(role)", path: path, errno: EIO, detail: "it ended after \(position + count) bytes") }
    }

    /// Reads up to `buffer.count` bytes from `position`; returns how many (0 at the end of the file). With
    /// `untilFull` it keeps reading until the buffer is full or the file ends.
    public func readSome(into buffer: UnsafeMutableRawBufferPointer, at position: Int, untilFull: Bool = false) throws(SystemError) -> Int {
        var offset = 0
        while offset < buffer.count {
            let count = pread(descriptor, buffer.baseAddress! + offset, buffer.count - offset, off_t(position + offset))
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError("read \(role)", path: path, errno: errno)
            }
            if count == 0 { break }
            offset += count
            if !untilFull { break }
        }
        return offset
    }

    public func size() throws(SystemError) -> Int {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw SystemError("stat \(role)", path: path, errno: errno) }
        return Int(info.st_size)
    }

    public func truncate(to length: Int = 0) throws(SystemError) {
        guard ftruncate(descriptor, off_t(length)) == 0 else { throw SystemError("truncate \(role)", path: path, errno: errno) }
    }

    public func sync() throws(SystemError) {
        guard fsync(descriptor) == 0 else { throw SystemError("sync \(role)", path: path, errno: errno) }
    }

    /// Closes now and reports failure: on NFS and some other file systems a deferred write error (e.g. quota)
    /// only shows up here.
    public mutating func close() throws(SystemError) {
        let descriptor = self.descriptor
        self.descriptor = -1
        guard descriptor >= 0 else { return }
        guard systemClose(descriptor) == 0 else { throw SystemError("close \(role)", path: path, errno: errno) }
    }
}

// The bare names `close` and `write` resolve to SystemFile's own methods inside it.
private func systemClose(_ descriptor: Int32) -> Int32 { close(descriptor) }
private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, buffer, count)
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` that keeps the error type (the standard library's rethrows it as `any Error`).
    func withSystemBytes<R>(_ body: (UnsafeRawBufferPointer) throws(SystemError) -> R) throws(SystemError) -> R {
        let result: Result<R, SystemError> = withUnsafeBytes { raw in Result { () throws(SystemError) in try body(raw) } }
        return try result.get()
    }

    public mutating func withSystemMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws(SystemError) -> R) throws(SystemError) -> R {
        let result: Result<R, SystemError> = withUnsafeMutableBytes { raw in Result { () throws(SystemError) in try body(raw) } }
        return try result.get()
    }
}

