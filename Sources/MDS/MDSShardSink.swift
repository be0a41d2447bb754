/// Streams the raw bytes of one shard into its file: hashes them as they pass, compresses them when asked,
/// hashes the compressed bytes too, and writes. Nothing but one chunk is held in memory.
struct MDSShardSink: ~Copyable {
    private var file: MDSFile
    private let compressor: ZstdCompressor?
    private var rawHashes: HashAccumulator
    private var storedHashes: HashAccumulator
    private var compressed: [UInt8] = []
    private(set) var rawBytes = 0
    private(set) var storedBytes = 0

    struct Result {
        var rawBytes: Int
        var rawHashes: [String: String]
        var storedBytes: Int
        var storedHashes: [String: String]
    }

    /// `pledgedSize` is the exact raw size: zstd writes it into the frame header (mosaicml's reader needs it)
    /// and fails the frame if the bytes that follow disagree.
    init(file: consuming MDSFile, compressor: ZstdCompressor?, hashes: [MDSHashAlgorithm], pledgedSize: Int)
        throws(ShardError)
    {
        if let compressor { try compressor.beginFrame(pledgedSize: UInt64(pledgedSize), path: file.path) }
        self.file = file
        self.compressor = compressor
        rawHashes = HashAccumulator(hashes)
        storedHashes = HashAccumulator(hashes)
    }

    var path: String { file.path }

    mutating func write(_ chunk: UnsafeRawBufferPointer) throws(ShardError) {
        rawHashes.update(chunk)
        rawBytes += chunk.count
        if let compressor {
            compressed.removeAll(keepingCapacity: true)
            try compressor.compress(chunk, endFrame: false, path: file.path, appendingTo: &compressed)
            try writeStored(compressed)
        } else {
            // Uncompressed, the stored file is the raw shard: its hashes are the raw hashes.
            storedBytes += chunk.count
            try file.write(chunk)
        }
    }

    mutating func write(_ bytes: [UInt8]) throws(ShardError) {
        try bytes.withBytes { (chunk) throws(ShardError) in try write(chunk) }
    }

    private mutating func writeStored(_ bytes: [UInt8]) throws(ShardError) {
        guard !bytes.isEmpty else { return }
        storedHashes.update(bytes)
        storedBytes += bytes.count
        try file.write(bytes)
    }

    /// Ends the frame, then fsyncs and closes the file, so a rename afterwards publishes complete, durable bytes.
    mutating func finish() throws(ShardError) -> Result {
        if let compressor {
            compressed.removeAll(keepingCapacity: true)
            try compressor.compress(UnsafeRawBufferPointer(start: nil, count: 0), endFrame: true, path: file.path,
                                    appendingTo: &compressed)
            try writeStored(compressed)
        }
        try file.sync()
        try file.close()
        let raw = rawHashes.hexDigests()
        return Result(
            rawBytes: rawBytes, rawHashes: raw, storedBytes: storedBytes,
            storedHashes: compressor == nil ? raw : storedHashes.hexDigests())
    }
}
