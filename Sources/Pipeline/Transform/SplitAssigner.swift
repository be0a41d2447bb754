import Crypto
import Foundation

/// Puts a row in a split by a hash of its group value and the pipeline's seed: the same group always lands in the
/// same split, in this version and every later one, and a group never straddles two splits.
struct SplitAssigner: Sendable {
    let seed: String
    let names: [String]
    /// Cumulative upper bounds in [0, 1], the last forced to 1 so rounding can never drop a row.
    let bounds: [Double]
    /// `seed` and its 0 separator, the start of every hashed message.
    private let prefix: [UInt8]

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
        prefix = Array(seed.utf8) + [0]
    }

    func split(forGroup group: String) -> String {
        // One-shot hash of seed, 0, group assembled on the stack: no hasher state to allocate or copy per row.
        var group = group
        let prefix = group.withUTF8 { text in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: self.prefix.count + text.count) { message in
                _ = message.initialize(fromContentsOf: self.prefix)
                _ = UnsafeMutableBufferPointer(rebasing: message[self.prefix.count...]).initialize(fromContentsOf: text)
                return SHA256.hash(data: UnsafeRawBufferPointer(message)).withUnsafeBytes { digest in
                    digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                }
            }
        }
        // 53 bits: exactly representable as a Double in [0, 1).
        let unit = Double(prefix >> 11) / Double(UInt64(1) << 53)
        let slot = bounds.firstIndex { unit < $0 } ?? bounds.count - 1
        return names[slot]
    }
}
