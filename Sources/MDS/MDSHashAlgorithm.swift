/// A hash mosaicml-streaming can record for shard files (index.json `hashes`, `raw_data.hashes`,
/// `zip_data.hashes`). mosaicml accepts any hashlib or xxhash algorithm; we write these two, and `etl verify`
/// checks these two.
public enum MDSHashAlgorithm: String, Sendable, Codable, CaseIterable, Hashable, Comparable {
    case sha256
    case xxh64

    /// mosaicml requires the list sorted by name (it raises otherwise), so we always write it sorted.
    public static func < (lhs: MDSHashAlgorithm, rhs: MDSHashAlgorithm) -> Bool { lhs.rawValue < rhs.rawValue }
}
