import SystemIO

/// A file of the shard writer: `SystemFile` (which owns the descriptor and handles EINTR and errno) with failures
/// turned into `ShardError`s, so a full disk says so, with the shard's path.
struct MDSFile: ~Copyable {
    private var file: SystemFile

    var path: String { file.path }

    private init(_ file: consuming SystemFile) { self.file = file }

    /// Creates a new file, failing if one exists, so two writers can never share a temporary name.
    static func createExclusive(_ path: String, role: String, readable: Bool = false) throws(ShardError) -> MDSFile {
        do { return MDSFile(try SystemFile.createExclusive(path, role: role, readable: readable)) } catch { throw ShardError(error) }
    }

    static func openForReading(_ path: String, role: String) throws(ShardError) -> MDSFile {
        do { return MDSFile(try SystemFile.openForReading(path, role: role)) } catch { throw ShardError(error) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(ShardError) {
        do { try file.write(bytes) } catch { throw ShardError(error) }
    }

    func write(_ bytes: UnsafeRawBufferPointer, at position: Int) throws(ShardError) {
        do { try file.write(bytes, at: position) } catch { throw ShardError(error) }
    }

    func write(_ bytes: [UInt8]) throws(ShardError) {
        try bytes.withBytes { (raw) throws(ShardError) in try write(raw) }
    }

    /// Fills `buffer` from `position`; a short file is an error (we only read back what we wrote or sized).
    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int) throws(ShardError) {
        do { try file.read(into: buffer, at: position) } catch { throw ShardError(error) }
    }

    /// Up to `buffer.count` bytes from `position` (fewer only at the end of the file).
    func readSome(into buffer: UnsafeMutableRawBufferPointer, at position: Int) throws(ShardError) -> Int {
        do { return try file.readSome(into: buffer, at: position, untilFull: true) } catch { throw ShardError(error) }
    }

    /// The first `length` bytes of this file mapped read-only behind `prefixLength` writable bytes (see
    /// `PrefixedFileMapping`).
    func mapped(length: Int, prefixLength: Int) throws(ShardError) -> PrefixedFileMapping {
        do { return try PrefixedFileMapping(descriptor: file.descriptor, path: file.path, length: length, prefixLength: prefixLength) } catch {
            throw ShardError(error)
        }
    }

    func size() throws(ShardError) -> Int {
        do { return try file.size() } catch { throw ShardError(error) }
    }

    func truncate() throws(ShardError) {
        do { try file.truncate() } catch { throw ShardError(error) }
    }

    func sync() throws(ShardError) {
        do { try file.sync() } catch { throw ShardError(error) }
    }

    mutating func close() throws(ShardError) {
        do { try file.close() } catch { throw ShardError(error) }
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
        do { try FileSystem.rename(source, to: destination, role: role) } catch { throw ShardError(error) }
    }

    static func syncDirectory(_ path: String) throws(ShardError) {
        do { try FileSystem.syncDirectory(path) } catch { throw ShardError(error) }
    }

    static func removeIfPresent(_ path: String) { FileSystem.removeIfPresent(path) }

    static func createDirectory(_ path: String) throws(ShardError) {
        do { try FileSystem.createDirectory(path) } catch { throw ShardError(error) }
    }
}

extension ShardError {
    init(_ error: SystemError) {
        self.init(.io, path: error.path, errno: error.errno, error.description)
    }
}
