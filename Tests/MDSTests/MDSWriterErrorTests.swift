import Foundation
import MDS
import Testing

/// Bad samples are rejected with the column named and leave the writer usable; bad setups fail early.
@Suite struct MDSWriterErrorTests {
    static let columns: [MDSColumn] = [
        MDSColumn(name: "ok", encoding: .uint8),
        MDSColumn(name: "label", encoding: .str),
        MDSColumn(name: "meta", encoding: .json),
        MDSColumn(name: "score", encoding: .float32),
        MDSColumn(name: "half", encoding: .float16),
        MDSColumn(name: "vec", encoding: .ndarray(dtype: .float32, shape: [4])),
        MDSColumn(name: "frames", encoding: .ndarray(dtype: .uint8)),
        MDSColumn(name: "any", encoding: .ndarray()),
        MDSColumn(name: "key", encoding: .int64),
    ]

    static let good: [String: MDSValue] = [
        "ok": .int(1), "label": .string("x"), "meta": .json("{}"), "score": .float(1), "half": .float(1),
        "vec": .ndarray(NDArray(float32: [1, 2, 3, 4], shape: [4])),
        "frames": .ndarray(NDArray(uint8: [1, 2], shape: [2])),
        "any": .ndarray(NDArray(int16: [1], shape: [1])), "key": .int(1),
    ]

    static func with(_ column: String, _ value: MDSValue?) -> [String: MDSValue] {
        var sample = good
        sample[column] = value
        return sample
    }

    static let badSamples: [(sample: [String: MDSValue], code: ShardError.Code, column: String)] = [
        (with("ok", .int(256)), .valueOutOfRange, "ok"),
        (with("ok", .int(-1)), .valueOutOfRange, "ok"),
        (with("key", .uint(UInt64(Int64.max) + 1)), .valueOutOfRange, "key"),
        (with("score", .float(1e300)), .valueOutOfRange, "score"),
        (with("half", .float(65520)), .valueOutOfRange, "half"),
        (with("ok", nil), .missingColumn, "ok"),
        (with("typo", .int(1)), .unknownColumn, "typo"),
        (with("label", .int(1)), .typeMismatch, "label"),
        (with("key", .float(1)), .typeMismatch, "key"),
        (with("meta", .json("{'single': 'quotes'}")), .invalidValue, "meta"),
        (with("meta", .json("NaN")), .invalidValue, "meta"),
        (with("meta", .json("{} {}")), .invalidValue, "meta"),
        (with("vec", .ndarray(NDArray(float32: [1, 2, 3], shape: [3]))), .invalidValue, "vec"),
        (with("vec", .ndarray(NDArray(float64: [1, 2, 3, 4], shape: [4]))), .invalidValue, "vec"),
        (with("frames", .ndarray(NDArray(int16: [1], shape: [1]))), .invalidValue, "frames"),
        (with("frames", .ndarray(NDArray(dtype: .uint8, shape: [2, 2], data: [1, 2, 3]))), .invalidValue, "frames"),
        (with("any", .ndarray(NDArray(dtype: .int16, shape: [], data: [1, 0]))), .invalidValue, "any"),
        (with("any", .ndarray(NDArray(dtype: .uint8, shape: [-1], data: []))), .invalidValue, "any"),
    ]

    @Test(arguments: 0..<badSamples.count)
    func badSampleIsRejectedAndWriterGoesOn(case index: Int) throws {
        let (sample, code, column) = Self.badSamples[index]
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let writer = try MDSWriter(directory: output, columns: Self.columns, options: MDSWriterOptions())
        try writer.write(Self.good)
        let error = try #require(throws: ShardError.self) { try writer.write(sample) }
        #expect(error.code == code)
        #expect(error.column == column)
        #expect(error.isSampleError)
        #expect(error.description.contains("'\(column)'"), "message should name the column: \(error)")
        try writer.write(Self.good)
        #expect(writer.samplesWritten == 2)
        let entries = try writer.finish()
        #expect(entries.map(\.samples) == [2])
        try MDSIndex(shards: entries).write(to: output)
        var count = 0
        try MDSReader(directory: output).forEachSample(verifyHashes: true) { sample in
            #expect(sample == Self.good)
            count += 1
        }
        #expect(count == 2)
    }

    @Test func invalidSetupsFailAtInit() throws {
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let one = [MDSColumn(name: "a", encoding: .int)]
        let cases: [([MDSColumn], MDSWriterOptions, ShardError.Code)] = [
            ([], MDSWriterOptions(), .invalidConfiguration),
            (one + one, MDSWriterOptions(), .invalidConfiguration),
            ([MDSColumn(name: "", encoding: .int)], MDSWriterOptions(), .invalidConfiguration),
            ([MDSColumn(name: "v", encoding: .ndarray(dtype: nil, shape: [4]))], MDSWriterOptions(), .invalidEncoding),
            ([MDSColumn(name: "v", encoding: .ndarray(dtype: .uint8, shape: [0]))], MDSWriterOptions(), .invalidEncoding),
            (one, MDSWriterOptions(sizeLimit: 0), .invalidConfiguration),
            (one, MDSWriterOptions(sizeLimit: 1 << 32), .invalidConfiguration),
            (one, MDSWriterOptions(zstdLevel: 23), .invalidConfiguration),
            (one, MDSWriterOptions(zstdLevel: 0), .invalidConfiguration),
        ]
        for (columns, options, code) in cases {
            let error = try #require(throws: ShardError.self) {
                _ = try MDSWriter(directory: output, columns: columns, options: options)
            }
            #expect(error.code == code, "\(columns) \(options): \(error)")
        }
        // Failed setups leave nothing behind.
        #expect(try MDSFixtures.listing(output).isEmpty)
    }

    @Test func unusableDirectoryNamesThePath() throws {
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let file = output.appendingPathComponent("not-a-directory")
        try Data([1]).write(to: file)
        let target = file.appendingPathComponent("train")
        let error = try #require(throws: ShardError.self) {
            _ = try MDSWriter(directory: target, columns: [MDSColumn(name: "a", encoding: .int)], options: MDSWriterOptions())
        }
        #expect(error.code == .io)
        #expect(error.path == file.path)
        #expect(error.description.contains(file.path))
        #expect(error.description.contains("errno"))
    }

    @Test func writerRefusesUseAfterFinish() throws {
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let writer = try MDSWriter(directory: output, columns: [MDSColumn(name: "a", encoding: .int)], options: MDSWriterOptions())
        try writer.write(["a": .int(1)])
        _ = try writer.finish()
        let error = try #require(throws: ShardError.self) { try writer.write(["a": .int(2)]) }
        #expect(error.code == .writerClosed)
        #expect(!error.isSampleError)
    }

    @Test func abandonedWriterLeavesNoTemporaryFiles() throws {
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        do {
            let writer = try MDSWriter(
                directory: output, columns: [MDSColumn(name: "a", encoding: .bytes)],
                options: MDSWriterOptions(sizeLimit: 300))
            for _ in 0..<10 { try writer.write(["a": .bytes(Array(repeating: 7, count: 100))]) }
            #expect(try MDSFixtures.listing(output).contains { $0.hasPrefix(MDSWriter.temporaryPrefix) })
        }
        // Completed shards stay (the caller decides whether to publish them); the spool is gone.
        let left = try MDSFixtures.listing(output)
        #expect(!left.isEmpty)
        #expect(left.allSatisfy { $0.hasPrefix("shard.") && $0.hasSuffix(".mds.zstd") })
    }
}

/// A full disk must surface as an `.io` ShardError naming the shard. Needs a small file system made for it, so
/// it runs only when given one, e.g. as root:
/// `mount -t tmpfs -o size=256k tmpfs /tmp/tinyfs && ETL_SHARDS_FULL_DIR=/tmp/tinyfs swift test --filter DiskFullTests`
@Suite struct DiskFullTests {
    static var directory: String? { ProcessInfo.processInfo.environment["ETL_SHARDS_FULL_DIR"] }

    @Test(.enabled(if: directory != nil))
    func fullDiskIsReportedWithShardPath() throws {
        let output = URL(fileURLWithPath: Self.directory!).appendingPathComponent("full-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let writer = try MDSWriter(
            directory: output, columns: [MDSColumn(name: "blob", encoding: .bytes)],
            options: MDSWriterOptions(sizeLimit: 64 << 10, zstdLevel: nil))
        var state: UInt64 = 1
        let error = try #require(throws: ShardError.self) {
            for _ in 0..<100_000 {
                let blob = (0..<4096).map { _ in
                    state = state &* 6_364_136_223_846_793_005 &+ 1
                    return UInt8(truncatingIfNeeded: state >> 33)
                }
                try writer.write(["blob": .bytes(blob)])
            }
            _ = try writer.finish()
        }
        print("disk full error: \(error)")
        #expect(error.code == .io)
        #expect(error.errno == ENOSPC)
        #expect(error.isRetryable)
        #expect(error.description.contains("No space left on device (errno 28)"))
        #expect(error.path?.hasPrefix(output.path) == true)
        // The writer is now closed for good, and says why.
        let again = try #require(throws: ShardError.self) { try writer.write(["blob": .bytes([1])]) }
        #expect(again.code == .writerClosed)
        #expect(again.description.contains("No space left on device"))
    }
}
