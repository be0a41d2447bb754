/// Reads one shard file from start to end in bounded memory, whatever its size: the stored bytes are read in
/// 1 MiB chunks, hashed as they pass, decompressed chunk by chunk (zstd also checks the frame's checksum when it
/// has one), the raw bytes hashed and parsed, and every sample handed to the caller as soon as its last byte
/// has arrived. At most one chunk plus one sample is held, plus the shard's offset table (4 bytes a sample).
///
/// Every check `MDSReader` makes is made here: size and hashes of the stored file and of the raw shard, frame
/// with its content size, sample count, offsets, header config against the index entry, every value's bytes.
/// When the stored file's hash is wrong, that is what is reported (the clearest account of a flipped byte), even
/// if decompressing or parsing failed on the way.
public enum MDSShardStream {
    public struct Summary: Sendable, Equatable {
        public var storedBytes: Int
        public var rawBytes: Int
        public var samples: Int
        /// The most raw bytes held at once while parsing: about one chunk plus the largest sample, whatever the
        /// shard's size (what "bounded memory" means here, and what the tests hold it to).
        public var peakBufferedBytes: Int
    }

    static let chunkSize = 1 << 20

    /// Streams the shard at `path` described by `entry`, calling `body` with each sample's position and values.
    /// Throws a `ShardError` naming the file and what is wrong, or what `body` throws.
    @discardableResult
    public static func read(
        _ entry: MDSShardEntry, path: String, verifyHashes: Bool = true,
        _ body: (Int, [String: MDSValue]) throws -> Void
    ) throws -> Summary {
        let stored = entry.storedFile
        let columns: [MDSColumn]
        do throws(ShardError) { columns = try entry.columns() } catch {
            throw ShardError(error.code, path: path, column: error.column, error.message)
        }
        func corrupt(_ problem: String) -> ShardError {
            ShardError(.corruptShard, path: path, "shard \(path) is corrupt: \(problem)")
        }
        if let compression = entry.compression {
            guard compression == "zstd" || compression.hasPrefix("zstd:") else {
                throw ShardError(.compression, path: path, "shard \(path) uses compression '\(compression)'; only zstd is supported")
            }
        }
        // Closed when it goes out of scope (SystemFile's deinit).
        let file = try MDSFile.openForReading(path, role: "shard")
        let size = try file.size()
        guard size == stored.bytes else { throw corrupt("it has \(size) bytes, index.json says \(stored.bytes)") }

        let algorithms = verifyHashes ? stored.hashes.keys.compactMap(MDSHashAlgorithm.init(rawValue:)) : []
        let rawAlgorithms = verifyHashes && entry.compression != nil ? entry.rawData.hashes.keys.compactMap(MDSHashAlgorithm.init(rawValue:)) : []
        var storedHashes = HashAccumulator(algorithms)
        var rawHashes = HashAccumulator(rawAlgorithms)
        var parser = RawShardParser(entry: entry, codec: MDSSampleCodec(sortedColumns: columns), path: path)
        let decompressor = try entry.compression.map { _ throws(ShardError) in try ZstdStreamDecompressor(path: path) }
        // The first failure to decompress or parse; reading goes on only to finish the stored file's hash.
        var failure: (any Error)?

        func consumeRaw(_ raw: UnsafeRawBufferPointer) throws {
            rawHashes.update(raw)
            try parser.feed(raw) { index, sample in
                do { try body(index, sample) } catch { throw CallerError(error: error) }
            }
        }

        var chunk = [UInt8](repeating: 0, count: Swift.min(chunkSize, Swift.max(size, 1)))
        var position = 0
        while position < size {
            let count = try chunk.withMutableBytes { (buffer) throws(ShardError) in try file.readSome(into: buffer, at: position) }
            guard count > 0 else { throw corrupt("it ended at byte \(position) while being read; index.json says \(size)") }
            try chunk.withBytes { (all) throws(ShardError) in storedHashes.update(UnsafeRawBufferPointer(rebasing: all[0..<count])) }
            if failure == nil {
                do {
                    try chunk.withUnsafeBytes { all in
                        let bytes = UnsafeRawBufferPointer(rebasing: all[0..<count])
                        if let decompressor {
                            if position == 0 {
                                guard let content = Zstd.frameContentSize(of: Array(bytes.prefix(18))) else {
                                    throw ShardError(.compression, path: path,
                                                     "cannot decompress \(path): not a zstd frame with its content size in the header (mosaicml-streaming cannot read it either)")
                                }
                                guard content == UInt64(entry.rawData.bytes) else {
                                    throw corrupt("its zstd header says it decompresses to \(content) bytes, index.json says \(entry.rawData.bytes)")
                                }
                            }
                            try decompressor.decompress(bytes, path: path, output: consumeRaw)
                        } else {
                            try consumeRaw(bytes)
                        }
                    }
                } catch let error as CallerError {
                    throw error.error
                } catch {
                    failure = error
                }
            }
            position += count
        }

        if verifyHashes { try check(storedHashes.hexDigests(), against: stored, path: path, what: "shard", alsoFailed: failure) }
        if let failure { throw failure }
        if let decompressor, !decompressor.frameComplete { throw corrupt("its zstd frame ends early (truncated)") }
        try parser.finish()
        if entry.compression != nil {
            guard parser.rawBytes == entry.rawData.bytes else {
                throw corrupt("it decompresses to \(parser.rawBytes) bytes, index.json says \(entry.rawData.bytes)")
            }
            if verifyHashes { try check(rawHashes.hexDigests(), against: entry.rawData, path: path, what: "decompressed contents of shard", alsoFailed: nil) }
        }
        return Summary(storedBytes: size, rawBytes: parser.rawBytes, samples: parser.samplesRead, peakBufferedBytes: parser.peakBuffered)
    }

    /// Wraps what the caller's closure throws, so it is passed on as is and never mistaken for a shard problem.
    struct CallerError: Error { var error: any Error }

    private static func check(_ actual: [String: String], against info: MDSFileInfo, path: String, what: String, alsoFailed: (any Error)?)
        throws(ShardError)
    {
        for algorithm in actual.keys.sorted() {
            let expected = info.hashes[algorithm]!.lowercased()
            guard actual[algorithm] == expected else {
                let detail = alsoFailed.map { "; reading it failed too: \($0)" } ?? ""
                throw ShardError(.hashMismatch, path: path,
                                 "\(what) \(path) has \(algorithm) \(actual[algorithm]!), index.json says \(expected)\(detail)")
            }
        }
    }
}

/// The MDS layout of a raw shard, parsed from bytes that arrive in pieces: `u32 count`, `u32 offsets[count + 1]`,
/// the config JSON up to `offsets[0]`, then the samples back to back.
struct RawShardParser {
    let entry: MDSShardEntry
    let codec: MDSSampleCodec
    let path: String
    /// Bytes not yet consumed; `buffer[bufferStart...]` are raw shard bytes from position `consumed`.
    private var buffer: [UInt8] = []
    private var bufferStart = 0
    private var consumed = 0
    private(set) var rawBytes = 0
    private var count: Int?
    private var offsets: [UInt32] = []
    private var configChecked = false
    private(set) var samplesRead = 0
    private(set) var peakBuffered = 0

    init(entry: MDSShardEntry, codec: MDSSampleCodec, path: String) {
        self.entry = entry
        self.codec = codec
        self.path = path
    }

    private func corrupt(_ problem: String) -> ShardError {
        ShardError(.corruptShard, path: path, "shard \(path) is corrupt: \(problem)")
    }

    private var available: Int { buffer.count - bufferStart }

    /// The next `length` unconsumed bytes, if they have arrived.
    private func peek(_ length: Int) -> ArraySlice<UInt8>? {
        available >= length ? buffer[bufferStart..<bufferStart + length] : nil
    }

    private mutating func advance(_ length: Int) {
        bufferStart += length
        consumed += length
        // Drop what was consumed once it is worth the copy, so the buffer stays about a chunk plus a sample.
        if bufferStart >= MDSShardStream.chunkSize || bufferStart == buffer.count {
            buffer.removeFirst(bufferStart)
            bufferStart = 0
        }
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ body: (Int, [String: MDSValue]) throws -> Void) throws {
        rawBytes += bytes.count
        buffer.append(contentsOf: bytes)
        peakBuffered = max(peakBuffered, buffer.count)
        try parse(body)
    }

    private static func u32(_ bytes: ArraySlice<UInt8>, at offset: Int) -> UInt32 {
        let base = bytes.startIndex + offset
        return UInt32(bytes[base]) | UInt32(bytes[base + 1]) << 8 | UInt32(bytes[base + 2]) << 16 | UInt32(bytes[base + 3]) << 24
    }

    private mutating func parse(_ body: (Int, [String: MDSValue]) throws -> Void) throws {
        if count == nil {
            guard let head = peek(4) else { return }
            let value = Int(Self.u32(head, at: 0))
            guard value == entry.samples else { throw corrupt("it holds \(value) samples, index.json says \(entry.samples)") }
            guard 4 * (value + 2) <= entry.rawData.bytes else { throw corrupt("its offsets run past the end of the file") }
            count = value
            advance(4)
        }
        let count = count!
        if offsets.count < count + 1 {
            let wanted = count + 1 - offsets.count
            let ready = min(wanted, available / 4)
            if ready > 0 {
                let slice = peek(4 * ready)!
                for index in 0..<ready {
                    let offset = Self.u32(slice, at: 4 * index)
                    let floor = offsets.last ?? UInt32(4 * (count + 2))
                    guard offset >= floor, Int(offset) <= entry.rawData.bytes else {
                        throw corrupt("sample offset \(offsets.count) (\(offset)) is out of order or out of bounds")
                    }
                    offsets.append(offset)
                }
                advance(4 * ready)
            }
            guard offsets.count == count + 1 else { return }
            guard Int(offsets.last!) == entry.rawData.bytes else {
                throw corrupt("its last offset is \(offsets.last!), but index.json says it has \(entry.rawData.bytes) bytes")
            }
        }
        if !configChecked {
            let length = Int(offsets[0]) - consumed
            guard let config = peek(length) else { return }
            try MDSReader.checkConfig(Array(config), entry: entry, corrupt: corrupt)
            configChecked = true
            advance(length)
        }
        while samplesRead < count {
            let length = Int(offsets[samplesRead + 1] - offsets[samplesRead])
            guard let bytes = peek(length) else { return }
            let index = samplesRead
            let sample = try bytes.withUnsafeBytes { (raw) throws(ShardError) in
                try codec.decode(raw, path: path, describe: "sample \(index)")
            }
            advance(length)
            samplesRead += 1
            try body(index, sample)
        }
        if available > 0 { throw corrupt("it has bytes after its last sample") }
    }

    /// Checks that the whole shard arrived.
    func finish() throws(ShardError) {
        guard let count, offsets.count == count + 1, configChecked, samplesRead == count, available == 0 else {
            throw corrupt("it ends early, after \(rawBytes) raw bytes (sample \(samplesRead) of \(count ?? entry.samples))")
        }
    }
}
