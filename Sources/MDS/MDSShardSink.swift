/// Writes one shard's file from its raw bytes, which lie at one address for the whole shard (see `ClosedShard`):
/// hashes them as they pass, compresses them when asked (zstd reading them in place), hashes the compressed bytes
/// too, and writes. Besides the raw bytes, nothing but one chunk of output is held in memory.
struct MDSShardSink: ~Copyable {
    private var file: MDSFile
    private let compressor: ZstdCompressor?
    private let content: UnsafeRawBufferPointer
    /// nil when the caller hashes the raw bytes itself (beside the compressor, on another thread).
    private var rawHashes: HashAccumulator?
    private var storedHashes: HashAccumulator
    private var compressed: [UInt8] = []
    /// How much of `content` has been written.
    private var position = 0
    private(set) var storedBytes = 0

    struct Result {
        var rawBytes: Int
        var rawHashes: [String: String]
        var storedBytes: Int
        var storedHashes: [String: String]
    }

    /// `content` is the whole raw shard; it must stay in place and unchanged until `finish` returns. Without
    /// `hashingRaw`, the result's raw hashes are empty (a compressed shard's caller hashes the raw bytes elsewhere).
    init(file: consuming MDSFile, compressor: ZstdCompressor?, hashes: [MDSHashAlgorithm], content: UnsafeRawBufferPointer,
         hashingRaw: Bool = true) throws(ShardError)
    {
        precondition(hashingRaw || compressor != nil, "an uncompressed shard's stored hashes are its raw hashes")
        if let compressor { try compressor.beginFrame(over: content, path: file.path) }
        self.file = file
        self.compressor = compressor
        self.content = content
        rawHashes = hashingRaw ? HashAccumulator(hashes) : nil
        storedHashes = HashAccumulator(hashes)
    }

    var path: String { file.path }

    /// Writes the content up to `end`.
    mutating func write(upTo end: Int) throws(ShardError) {
        precondition(end >= position && end <= content.count, "a shard is written front to back")
        let chunk = UnsafeRawBufferPointer(rebasing: content[position..<end])
        position = end
        rawHashes?.update(chunk)
        if let compressor {
            compressed.removeAll(keepingCapacity: true)
            try compressor.compress(upTo: end, endFrame: false, path: file.path, appendingTo: &compressed)
            try writeStored(compressed)
        } else {
            // Uncompressed, the stored file is the raw shard: its hashes are the raw hashes.
            storedBytes += chunk.count
            try file.write(chunk)
        }
    }

    private mutating func writeStored(_ bytes: [UInt8]) throws(ShardError) {
        guard !bytes.isEmpty else { return }
        storedHashes.update(bytes)
        storedBytes += bytes.count
        try file.write(bytes)
    }

    /// Writes what is left, ends the frame, then fsyncs and closes the file, so a rename afterwards publishes
    /// complete, durable bytes.
    mutating func finish() throws(ShardError) -> Result {
        if position < content.count { try write(upTo: content.count) }
        if let compressor {
            compressed.removeAll(keepingCapacity: true)
            try compressor.compress(upTo: content.count, endFrame: true, path: file.path, appendingTo: &compressed)
            try writeStored(compressed)
        }
        try file.sync()
        try file.close()
        let raw = rawHashes?.hexDigests() ?? [:]
        return Result(
            rawBytes: content.count, rawHashes: raw, storedBytes: storedBytes,
            storedHashes: compressor == nil ? raw : storedHashes.hexDigests())
    }
}
