import Foundation

/// Reads an MDS dataset directory (one split: index.json plus its shards). `forEachSample` streams (bounded
/// memory whatever the shard size, through `MDSShardStream`); `readShard` and `rawShardBytes` hold one whole raw
/// shard in memory. Checks the shard layout strictly (sample count, offsets, header config against the
/// index entry, every value's bytes), so a dataset it reads without error is one mosaicml can read.
public struct MDSReader: Sendable {
    public let directory: URL
    public let index: MDSIndex

    /// Reads `directory/index.json`.
    public init(directory: URL) throws(ShardError) {
        self.init(directory: directory, index: try MDSIndex.read(from: directory))
    }

    /// Reads shards listed by an index the caller already has (e.g. from a manifest).
    public init(directory: URL, index: MDSIndex) {
        self.directory = directory
        self.index = index
    }

    public var sampleCount: Int { index.sampleCount }

    /// Calls `body` with every sample in index order, streaming each shard (see `MDSShardStream`).
    public func forEachSample(verifyHashes: Bool = false, _ body: ([String: MDSValue]) throws -> Void) throws {
        for entry in index.shards {
            try forEachSample(in: entry, verifyHashes: verifyHashes) { _, sample in try body(sample) }
        }
    }

    /// Streams one shard: `body` gets each sample's position in the shard and its values.
    @discardableResult
    public func forEachSample(in entry: MDSShardEntry, verifyHashes: Bool = true, _ body: (Int, [String: MDSValue]) throws -> Void)
        throws -> MDSShardStream.Summary
    {
        try MDSShardStream.read(entry, path: directory.appendingPathComponent(entry.storedFile.basename).path,
                                verifyHashes: verifyHashes, body)
    }

    /// Every sample of one shard, decoded.
    public func readShard(_ entry: MDSShardEntry, verifyHashes: Bool) throws(ShardError) -> [[String: MDSValue]] {
        let shard = try loadShard(entry, verifyHashes: verifyHashes)
        var samples: [[String: MDSValue]] = []
        samples.reserveCapacity(entry.samples)
        for sampleIndex in 0..<entry.samples { samples.append(try shard.sample(sampleIndex)) }
        return samples
    }

    /// The raw (decompressed) bytes of one shard, after the same checks `readShard` makes.
    public func rawShardBytes(_ entry: MDSShardEntry, verifyHashes: Bool) throws(ShardError) -> [UInt8] {
        try loadShard(entry, verifyHashes: verifyHashes).raw
    }

    /// A shard's raw bytes with its parsed offsets.
    struct LoadedShard {
        let raw: [UInt8]
        let offsets: [Int]
        let codec: MDSSampleCodec
        let path: String

        func sample(_ index: Int) throws(ShardError) -> [String: MDSValue] {
            let start = offsets[index]
            let end = offsets[index + 1]
            return try raw.withBytes { (bytes) throws(ShardError) in
                try codec.decode(
                    UnsafeRawBufferPointer(rebasing: bytes[start..<end]), path: path, describe: "sample \(index)")
            }
        }
    }

    func loadShard(_ entry: MDSShardEntry, verifyHashes: Bool) throws(ShardError) -> LoadedShard {
        let stored = entry.storedFile
        let path = directory.appendingPathComponent(stored.basename).path
        let columns: [MDSColumn]
        do throws(ShardError) {
            columns = try entry.columns()
        } catch {
            throw ShardError(error.code, path: path, column: error.column, error.message)
        }
        func corrupt(_ problem: String) -> ShardError {
            ShardError(.corruptShard, path: path, "shard \(path) is corrupt: \(problem)")
        }

        let raw: [UInt8]
        do {
            let bytes = try MDSFile.readAll(path, role: "shard")
            guard bytes.count == stored.bytes else {
                throw corrupt("it has \(bytes.count) bytes, index.json says \(stored.bytes)")
            }
            if verifyHashes { try Self.verify(bytes, against: stored, path: path) }
            if let compression = entry.compression {
                guard compression == "zstd" || compression.hasPrefix("zstd:") else {
                    throw ShardError(
                        .compression, path: path,
                        "shard \(path) uses compression '\(compression)'; only zstd is supported")
                }
                guard entry.zipData != nil else {
                    throw ShardError(.invalidIndex, path: path, "index entry for \(path) has compression but no zip_data")
                }
                var decompressor = try ZstdDecompressor(path: path)
                raw = try decompressor.decompressFrame(bytes, path: path)
                guard raw.count == entry.rawData.bytes else {
                    throw corrupt("it decompresses to \(raw.count) bytes, index.json says \(entry.rawData.bytes)")
                }
                if verifyHashes { try Self.verify(raw, against: entry.rawData, path: path, decompressed: true) }
            } else {
                raw = bytes
            }
        }

        // Header: u32 sample count, u32 offsets[count + 1], config JSON up to offsets[0].
        guard raw.count >= 8 else { throw corrupt("it is too short for an MDS header") }
        let count = Int(raw.loadLittleEndian(at: 0, width: 4))
        guard count == entry.samples else { throw corrupt("it holds \(count) samples, index.json says \(entry.samples)") }
        let offsetsEnd = 4 * (count + 2)
        guard offsetsEnd <= raw.count else { throw corrupt("its offsets run past the end of the file") }
        var offsets: [Int] = []
        offsets.reserveCapacity(count + 1)
        for position in stride(from: 4, to: offsetsEnd, by: 4) {
            let offset = Int(raw.loadLittleEndian(at: position, width: 4))
            guard offset >= (offsets.last ?? offsetsEnd), offset <= raw.count else {
                throw corrupt("sample offset \(offsets.count) (\(offset)) is out of order or out of bounds")
            }
            offsets.append(offset)
        }
        guard offsets.last == raw.count else {
            throw corrupt("its last offset is \(offsets.last!), but it has \(raw.count) bytes")
        }
        try Self.checkConfig(Array(raw[offsetsEnd..<offsets[0]]), entry: entry, corrupt: corrupt)
        return LoadedShard(raw: raw, offsets: offsets, codec: MDSSampleCodec(sortedColumns: columns), path: path)
    }

    private struct HeaderConfig: Decodable {
        var column_encodings: [String]
        var column_names: [String]
        var column_sizes: [Int?]
    }

    static func checkConfig(_ bytes: [UInt8], entry: MDSShardEntry, corrupt: (String) -> ShardError)
        throws(ShardError)
    {
        let config: HeaderConfig
        do {
            config = try JSONDecoder().decode(HeaderConfig.self, from: Data(bytes))
        } catch {
            throw corrupt("its header config is not the expected JSON (\(error))")
        }
        guard config.column_names == entry.columnNames, config.column_encodings == entry.columnEncodings,
            config.column_sizes == entry.columnSizes
        else {
            throw corrupt("its header lists columns \(config.column_names) \(config.column_encodings), index.json "
                + "lists \(entry.columnNames) \(entry.columnEncodings)")
        }
    }

    /// Checks every hash we can compute; algorithms we do not implement (another writer may have used md5,
    /// say) are skipped, and a file with no hashes recorded passes.
    private static func verify(_ bytes: [UInt8], against info: MDSFileInfo, path: String, decompressed: Bool = false)
        throws(ShardError)
    {
        let algorithms = info.hashes.keys.compactMap(MDSHashAlgorithm.init(rawValue:))
        guard !algorithms.isEmpty else { return }
        let actual = HashAccumulator.hexDigests(of: bytes, algorithms)
        for algorithm in algorithms.sorted() {
            let expected = info.hashes[algorithm.rawValue]!
            guard actual[algorithm.rawValue] == expected.lowercased() else {
                let what = decompressed ? "decompressed contents of shard" : "shard"
                throw ShardError(
                    .hashMismatch, path: path,
                    "\(what) \(path) has \(algorithm.rawValue) \(actual[algorithm.rawValue]!), index.json says \(expected)")
            }
        }
    }
}
