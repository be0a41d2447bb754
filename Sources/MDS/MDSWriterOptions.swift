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

    /// How shard files are named; see `MDSShardNaming`.
    public var naming: MDSShardNaming = .sequential

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
        if naming == .contentAddressed, !hashes.contains(.sha256) {
            throw ShardError(.invalidConfiguration, "content-addressed shard names need the sha256 hash")
        }
        if let zstdLevel, !Zstd.levels.contains(zstdLevel) {
            throw ShardError(
                .invalidConfiguration, "zstd level \(zstdLevel) is outside \(Zstd.levels) (what mosaicml-streaming accepts)")
        }
    }
}

/// Shard file names. mosaicml-streaming reads whatever basenames index.json lists, so the name is ours to choose.
public enum MDSShardNaming: Sendable, Equatable {
    /// `shard.00000.mds[.zstd]`, `shard.00001…` from the writer's first index: what mosaicml's own writer does.
    case sequential
    /// `shard.<first 16 hex digits of the stored file's sha256>.mds[.zstd]`. Names that depend only on content never
    /// collide between two runs, two retries or two partitions writing into one version (every sample carries its
    /// own `__key__`, so two shards of different samples differ), and the same input always gets the same names.
    case contentAddressed

    static let hashDigits = 16
}
