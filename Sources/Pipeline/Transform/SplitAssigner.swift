import Crypto
import Foundation

/// Puts a row in a split by a hash of its group value and the pipeline's seed: the same group always lands in the
/// same split, in this version and every later one, and a group never straddles two splits.
struct SplitAssigner: Sendable {
    let seed: String
    let names: [String]
    /// Cumulative upper bounds in [0, 1], the last forced to 1 so rounding can never drop a row.
    let bounds: [Double]

    init(_ config: SplitConfig) {
        seed = config.seed
        names = config.names
        var total = 0.0
        var bounds = config.ratios.map { total += $0.ratio; return total }
        if !bounds.isEmpty { bounds[bounds.count - 1] = 1 }
        self.bounds = bounds
    }

    func split(forGroup group: String) -> String {
        var hasher = SHA256()
        hasher.update(data: Data(seed.utf8))
        hasher.update(data: Data([0]))
        hasher.update(data: Data(group.utf8))
        let prefix = hasher.finalize().prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        // 53 bits: exactly representable as a Double in [0, 1).
        let unit = Double(prefix >> 11) / Double(UInt64(1) << 53)
        let slot = bounds.firstIndex { unit < $0 } ?? bounds.count - 1
        return names[slot]
    }
}
