/// How an `MDSWriter` cuts, compresses and hashes shards.
public struct MDSWriterOptions: Sendable, Equatable {
    /// Upper bound of a raw (uncompressed) shard in bytes, counted the way mosaicml counts it (header, offsets,
    /// config JSON and samples). A shard closes before the sample that would push it past the limit; a single
    /// sample bigger than the limit gets a shard of its own. Must be in 1..<2^32 (offsets are u32).
    public var sizeLimit: Int
    /// zstd level 1...22, written as `zstd:<level>`; nil stores shards uncompressed (`shard.NNNNN.mds`).
    /// Levels above 19 need far more memory (hundreds of MB for 64 MiB shards).
    public var zstdLevel: Int?
    /// Hashes recorded in index.json for each shard file; written sorted and without duplicates.
    public var hashes: [MDSHashAlgorithm]

    public static let defaultSizeLimit = 1 << 26

    /// Defaults: 64 MiB shards (mosaicml's default), `zstd:3` (what our datasets use), sha256 (what the
    /// manifest and `etl verify` rely on).
    public init(sizeLimit: Int = MDSWriterOptions.defaultSizeLimit, zstdLevel: Int? = 3, hashes: [MDSHashAlgorithm] = [.sha256]) {
        self.sizeLimit = sizeLimit
        self.zstdLevel = zstdLevel
        self.hashes = hashes
    }

    /// The index.json `compression` value.
    public var compressionName: String? { zstdLevel.map { "zstd:\($0)" } }

    var sortedHashes: [MDSHashAlgorithm] { Array(Set(hashes)).sorted() }

    func validate() throws(ShardError) {
        guard sizeLimit >= 1, sizeLimit < 1 << 32 else {
            throw ShardError(
                .invalidConfiguration,
                "shard size limit \(sizeLimit) is outside 1..<4294967296 (MDS sample offsets are u32)")
        }
        if let zstdLevel, !Zstd.levels.contains(zstdLevel) {
            throw ShardError(
                .invalidConfiguration, "zstd level \(zstdLevel) is outside \(Zstd.levels) (what mosaicml-streaming accepts)")
        }
    }
}
