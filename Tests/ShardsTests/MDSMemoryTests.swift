import Foundation
import Shards
import Testing


/// The writer must not hold a shard in memory. Writing hundreds of MB takes a while in a debug build, so
/// this runs only when asked: `ETL_SHARDS_MEMORY_TEST_MB=1024 swift test --filter MDSMemoryTests` (alone, so
/// no other test's allocations count against the process's RSS). Linux only (reads /proc/self/status).
@Suite struct MDSMemoryTests {
    static var megabytes: Int? {
        ProcessInfo.processInfo.environment["ETL_SHARDS_MEMORY_TEST_MB"].flatMap(Int.init)
    }

    /// Current resident set size: unlike getrusage's peak, this shows what the writer holds right now, so the
    /// test runner's own earlier peak cannot hide growth.
    static func residentMegabytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes / 1024
    }

    @Test(.enabled(if: megabytes != nil))
    func writerMemoryStaysFlatWithDefaultShards() throws {
        let total = (Self.megabytes ?? 0) << 20
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let columns = [
            MDSColumn(name: "key", encoding: .int64), MDSColumn(name: "frames", encoding: .ndarray(dtype: .uint8)),
        ]
        let writer = try MDSWriter(
            directory: output, columns: columns, options: MDSWriterOptions(hashes: [.sha256, .xxh64]))
        // 256 KiB frames of cheap pseudo-random bytes (half compressible), 64 MiB shards by default.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var frame = [UInt8](repeating: 0, count: 256 << 10)
        let before = Self.residentMegabytes()
        var highest = before
        var written = 0
        var key: Int64 = 0
        while written < total {
            for index in stride(from: 0, to: frame.count, by: 16) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                frame[index] = UInt8(truncatingIfNeeded: state >> 33)
            }
            try writer.write(["key": .int(key), "frames": .ndarray(NDArray(uint8: frame, shape: [512, 512]))])
            written += frame.count
            key += 1
            if key % 16 == 0 { highest = max(highest, Self.residentMegabytes()) }
        }
        let entries = try writer.finish()
        highest = max(highest, Self.residentMegabytes())
        print("wrote \(written >> 20) MiB in \(entries.count) shards; RSS \(before) MB before, at most \(highest) MB during")
        #expect(entries.count >= total / (64 << 20))
        #expect(highest - before < 48, "RSS grew by \(highest - before) MB while writing")
    }
}
