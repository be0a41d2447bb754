import CSHA256
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
        var group = group
        return names[group.withUTF8 { slot(forGroup: UnsafeRawBufferPointer($0)) }]
    }

    /// The index in `names` of the split of the group whose text is the UTF-8 `group`.
    func slot(forGroup group: UnsafeRawBufferPointer) -> Int {
        // One-shot hash of seed, 0, group assembled on the stack: no hasher state to allocate or copy per row.
        let leading = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: prefix.count + group.count) { message in
            _ = message.initialize(fromContentsOf: self.prefix)
            _ = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(message)[self.prefix.count...]).initializeMemory(as: UInt8.self, fromContentsOf: group)
            return Self.sha256Prefix(UnsafeRawBufferPointer(message))
        }
        // 53 bits: exactly representable as a Double in [0, 1).
        let unit = Double(leading >> 11) / Double(UInt64(1) << 53)
        return bounds.firstIndex { unit < $0 } ?? bounds.count - 1
    }

    /// The first 8 bytes of SHA-256(`message`), big-endian. On the CPU's SHA instructions where it has them: swift-crypto
    /// allocates and zeroes a context per hash, which for the one short message of each row cost more than the hashing
    /// (about 0.2 CPU seconds per million rows).
    static func sha256Prefix(_ message: UnsafeRawBufferPointer) -> UInt64 {
        var prefix: UInt64 = 0
        if etl_sha256_prefix(message.baseAddress, message.count, &prefix) == 1 { return prefix }
        return portableSHA256Prefix(message)
    }

    static func portableSHA256Prefix(_ message: UnsafeRawBufferPointer) -> UInt64 {
        SHA256.hash(data: message).withUnsafeBytes { digest in digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
    }
}
