import Crypto

/// Puts a row in a split by a hash of its group value and the pipeline's seed: the same group always lands in the
/// same split, in this version and every later one, and a group never straddles two splits.
struct SplitAssigner: Sendable {
    let seed: String
    let names: [String]
    /// Cumulative upper bounds in [0, 1], the last forced to 1 so rounding can never drop a row.
    let bounds: [Double]
    /// SHA-256 state after `seed` and its 0 separator: copied per row, so the seed is hashed once per run, not
    /// once per row (the digest is the same as hashing seed, 0, group in one go).
    private let seeded: SHA256

    init(_ config: SplitConfig) {
        self.init(seed: config.seed, ratios: config.ratios.map { ($0.name, $0.ratio) })
    }

    init(seed: String, ratios: [(name: String, ratio: Double)]) {
        self.seed = seed
        names = ratios.map(\.name)
        var total = 0.0
        var bounds = ratios.map { total += $0.ratio; return total }
        if !bounds.isEmpty { bounds[bounds.count - 1] = 1 }
        self.bounds = bounds
        var hasher = SHA256()
        var prefix = Array(seed.utf8)
        prefix.append(0)
        prefix.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        seeded = hasher
    }

    func split(forGroup group: String) -> String {
        var hasher = seeded
        var group = group
        group.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        let prefix = hasher.finalize().withUnsafeBytes { digest in
            digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        // 53 bits: exactly representable as a Double in [0, 1).
        let unit = Double(prefix >> 11) / Double(UInt64(1) << 53)
        let slot = bounds.firstIndex { unit < $0 } ?? bounds.count - 1
        return names[slot]
    }
}
