internal import Crypto

/// Feeds the same bytes to every requested hash so a shard file is hashed while it streams past, never held
/// whole in memory.
struct HashAccumulator {
    private var sha256: SHA256?
    private var xxh64: XXH64?

    init(_ algorithms: [MDSHashAlgorithm]) {
        sha256 = algorithms.contains(.sha256) ? SHA256() : nil
        xxh64 = algorithms.contains(.xxh64) ? XXH64() : nil
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        sha256?.update(bufferPointer: bytes)
        xxh64?.update(bytes)
    }

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Lowercase hex digests keyed by algorithm name, as index.json stores them.
    func hexDigests() -> [String: String] {
        var digests: [String: String] = [:]
        if let sha256 {
            digests[MDSHashAlgorithm.sha256.rawValue] = sha256.finalize().map { byte in
                let hex = String(byte, radix: 16)
                return byte < 16 ? "0" + hex : hex
            }.joined()
        }
        if let xxh64 { digests[MDSHashAlgorithm.xxh64.rawValue] = xxh64.hexDigest() }
        return digests
    }

    static func hexDigests(of bytes: [UInt8], _ algorithms: [MDSHashAlgorithm]) -> [String: String] {
        var accumulator = HashAccumulator(algorithms)
        accumulator.update(bytes)
        return accumulator.hexDigests()
    }
}
