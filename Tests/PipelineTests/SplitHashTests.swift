import CSHA256
import Foundation
@testable import Pipeline
import Testing

/// A row's split comes from SHA-256 of the seed and its group, on the CPU's SHA instructions where it has them: the
/// same hash as swift-crypto's, or rows would change splits between machines and versions.
@Suite struct SplitHashTests {
    @Test func theSHAInstructionsGiveSwiftCryptosHashAtEveryLength() throws {
        var generator = SystemRandomNumberGenerator()
        for length in Array(0...200) + [255, 256, 257, 1000, 4096] {
            for _ in 0..<4 {
                let message = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let (fast, portable) = message.withUnsafeBytes { (SplitAssigner.sha256Prefix($0), SplitAssigner.portableSHA256Prefix($0)) }
                #expect(fast == portable, "length \(length)")
            }
        }
        #expect(Array("abc".utf8).withUnsafeBytes(SplitAssigner.sha256Prefix) == 0xba78_16bf_8f01_cfea)
        // On a machine whose CPU has them, the instructions are what ran.
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if flags.contains(" sha_ni") && flags.contains(" sse4_1") {
            var prefix: UInt64 = 0
            #expect(Array("abc".utf8).withUnsafeBytes { etl_sha256_prefix($0.baseAddress, $0.count, &prefix) } == 1)
            #expect(prefix == 0xba78_16bf_8f01_cfea)
        }
    }

    @Test func splitsAreThoseOfTheHashOfSeedAndGroup() {
        let splits = SplitAssigner(seed: "etl", ratios: [("train", 0.8), ("val", 0.1), ("test", 0.1)])
        var counts: [String: Int] = [:]
        for key in 0..<20_000 {
            let group = String(key)
            let split = splits.split(forGroup: group)
            counts[split, default: 0] += 1
            let unit = Double((Array("etl\0\(group)".utf8).withUnsafeBytes(SplitAssigner.portableSHA256Prefix)) >> 11) / Double(UInt64(1) << 53)
            #expect(split == (unit < 0.8 ? "train" : unit < 0.9 ? "val" : "test"))
        }
        #expect(abs(counts["train", default: 0] - 16_000) < 400 && abs(counts["test", default: 0] - 2_000) < 200)
    }
}
