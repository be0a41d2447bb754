import Dataset
import Foundation
import MDS
import SystemIO
import Testing

/// The pure decisions behind verify, diff, gc, pins, forget's tombstones, head's files and the tables, tested
/// without a database. The commands themselves are tested end to end in Tests/EtlTests/Tools*.swift.
@Suite struct ToolsLogicTests {
    static func version(_ name: String, shards: [String: [(String, Int)]]) throws -> (DatasetManifest, [String: MDSIndex]) {
        let builder = VersionBuilder(parent: nil, splitNames: Array(shards.keys))
        let sealed = shards.mapValues { $0.map { VersionBuilderTests.shard($0.0, samples: $0.1) } }
        let built = try builder.build(run: VersionBuilderTests.run(name), sealed: sealed)
        return (built.manifest, built.indexes)
    }

    // MARK: verify

    @Test func consistentVersionHasNoProblems() throws {
        let (manifest, indexes) = try Self.version("v1", shards: ["train": [("shard.a.mds.zstd", 4), ("shard.b.mds.zstd", 2)]])
        #expect(VersionConsistency.problems(manifest: manifest, indexes: indexes, dataset: "fb", version: "v1", versionPath: "/d/fb/v1").isEmpty)
    }

    @Test func manifestThatDisagreesWithItsIndexIsNamed() throws {
        var (manifest, indexes) = try Self.version("v1", shards: ["train": [("shard.a.mds.zstd", 4), ("shard.b.mds.zstd", 2)]])
        manifest.splits["train"]!.shards[1].sha256 = String(repeating: "0", count: 64)
        manifest.splits["train"]!.shards[0].samples = 5
        indexes["train"]!.shards.append(VersionBuilderTests.shard("shard.c.mds.zstd", samples: 1))
        let problems = VersionConsistency.problems(manifest: manifest, indexes: indexes, dataset: "fb", version: "v2", versionPath: "/d/fb/v2")
        let text = problems.map(\.description)
        #expect(text == [
            "/d/fb/v2/manifest.json: names version 'v1', but it is in directory 'v2'",
            "/d/fb/v2/manifest.json: split train counts 6 samples, but its shards add up to 7",
            "/d/fb/v2/train/index.json: lists 7 samples, manifest.json says split train has 6",
            "/d/fb/v2/train/index.json: lists other shards than manifest.json: only index.json lists shard.c.mds.zstd",
            "/d/fb/v2/train/index.json: disagrees with manifest.json about shard.a.mds.zstd (index.json vs manifest.json): samples 4 vs 5",
            "/d/fb/v2/train/index.json: disagrees with manifest.json about shard.b.mds.zstd (index.json vs manifest.json): sha256 aaaaaaaaaaaaaaaa… vs 0000000000000000…",
        ], "\(text)")
    }

    // MARK: diff

    @Test func diffPlanReadsOnlyShardsOneSideLists() throws {
        let (_, a) = try Self.version("v1", shards: ["train": [("shard.a.mds.zstd", 4), ("shard.b.mds.zstd", 2)]])
        let (_, b) = try Self.version("v2", shards: ["train": [("shard.a.mds.zstd", 4), ("shard.c.mds.zstd", 3)]])
        let plan = VersionDiff.plan(from: a["train"], to: b["train"])
        #expect(plan.shared == ["shard.a.mds.zstd"])
        #expect(plan.onlyFrom.map(\.storedFile.basename) == ["shard.b.mds.zstd"])
        #expect(plan.onlyTo.map(\.storedFile.basename) == ["shard.c.mds.zstd"])
        #expect(VersionDiff.plan(from: nil, to: b["train"]).onlyTo.count == 2)
    }

    @Test func diffComparesPlainValuesAndMediaByContent() {
        let frame = NDArray(uint8: [1, 2, 3, 4], shape: [1, 2, 2, 1])
        var changedFrame = frame
        changedFrame.data[3] = 9
        func sample(_ label: String, _ frames: NDArray) -> [String: String] {
            VersionDiff.fingerprints(["__key__": .string("k"), "label": .string(label), "frames": .ndarray(frames), "n": .int(1)])
        }
        var diff = VersionDiff(dataset: "fb", from: "v1", to: "v2")
        diff.compare(split: "train",
                     from: ["1": sample("a", frame), "2": sample("a", frame), "10": sample("a", frame), "3": sample("a", frame)],
                     to: ["1": sample("a", frame), "2": sample("b", frame), "3": sample("a", changedFrame), "4": sample("a", frame), "11": sample("a", frame)])
        #expect(diff.added == ["4", "11"], "keys in numeric order")
        #expect(diff.removed == ["10"])
        #expect(diff.changed == [.init(key: "2", split: "train", columns: ["label"]), .init(key: "3", split: "train", columns: ["frames"])])
        #expect(diff.changedColumns == ["label": 1, "frames": 1])
        #expect(diff.splits["train"]!.added == 2 && diff.splits["train"]!.removed == 1 && diff.splits["train"]!.changed == 2)
        // Media is fingerprinted by a hash, not kept: a fingerprint is short whatever the value's size.
        #expect(VersionDiff.fingerprint(.bytes([UInt8](repeating: 7, count: 1 << 20))).count < 100)
        #expect(VersionDiff.fingerprint(.int(1)) != VersionDiff.fingerprint(.string("1")))
    }

    // MARK: gc and pins

    static func candidate(_ version: String, daysAgo: Double, _ shards: [String]) -> GarbageCollection.Candidate {
        .init(version: version, createdAt: Date(timeIntervalSince1970: 1_000_000_000 - daysAgo * 86400),
              shards: Dictionary(uniqueKeysWithValues: shards.map { ($0, 100) }))
    }

    @Test func gcKeepsNewestAndPinnedAndFreesOnlyUnreferencedShards() {
        let versions = [
            Self.candidate("v1", daysAgo: 40, ["train/a"]),
            Self.candidate("v2", daysAgo: 30, ["train/a", "train/b"]),
            Self.candidate("v3", daysAgo: 20, ["train/a", "train/b", "train/c"]),
            Self.candidate("v4", daysAgo: 10, ["train/a", "train/d"]),  // a --full rebuild that kept shard a's bytes
        ]
        let plan = GarbageCollection.plan(versions, pins: PinList(pinned: ["v2"]), rule: .keepNewest(1))
        #expect(plan.remove == ["v1", "v3"])
        #expect(plan.spared == ["v2": "pinned"])
        #expect(plan.keep == ["v2", "v4"])
        #expect(plan.freedShards == ["train/c"], "a and b are still listed by kept versions")
        #expect(plan.freedBytes == 100)

        let byAge = GarbageCollection.plan(versions, pins: PinList(), rule: .olderThan(Date(timeIntervalSince1970: 1_000_000_000)))
        #expect(byAge.remove == ["v1", "v2", "v3"])
        #expect(byAge.spared == ["v4": "newest version"])
        #expect(byAge.freedShards == ["train/b", "train/c"])
        #expect(GarbageCollection.plan(versions, pins: PinList(), rule: .keepNewest(10)).remove.isEmpty)
    }

    @Test func ageAndDateParsing() {
        #expect(GarbageCollection.parseAge("30d") == TimeInterval(30 * 86400))
        #expect(GarbageCollection.parseAge("2w") == TimeInterval(14 * 86400))
        #expect(GarbageCollection.parseAge("12h") == TimeInterval(12 * 3600))
        #expect(GarbageCollection.parseAge("soon") == nil)
        #expect(GarbageCollection.parseAge("-1d") == nil)
        #expect(GarbageCollection.date("2026-11-25T10:00:00.250Z") != nil)
        #expect(GarbageCollection.date("2026-11-25T10:00:00Z") != nil)
    }

    @Test func pinsRoundTripThroughTheirFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pins-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try PinList.load(datasetDirectory: directory) == PinList())
        var pins = PinList()
        let first = pins.set("v10", pinned: true), second = pins.set("v2", pinned: true), again = pins.set("v2", pinned: true)
        #expect(first && second && !again)
        #expect(pins.pinned == ["v2", "v10"])
        try pins.save(datasetDirectory: directory)
        #expect(try PinList.load(datasetDirectory: directory) == pins)
        #expect(try String(contentsOfFile: "\(directory)/pins.json", encoding: .utf8) == "{\n  \"pinned\" : [\n    \"v2\",\n    \"v10\"\n  ]\n}\n")
    }

    // MARK: tombstones

    @Test func tombstonesHoldSaltedHashesNeverKeys() {
        var stones = Tombstones(salt: "00ff")
        #expect(stones.add(["alice-7", "bob-9"]) == 2)
        #expect(stones.add(["alice-7"]) == 0)
        #expect(stones.hashes.count == 2 && stones.hashes.allSatisfy { $0.count == 64 && !$0.contains("alice") })
        let filter = TombstoneFilter(stones)
        #expect(filter.isForgotten("alice-7") && filter.isForgotten("bob-9") && !filter.isForgotten("carol-1"))
        // Another salt, other hashes: the file of one dataset says nothing about the keys of another.
        #expect(Tombstones(salt: "01").hash("alice-7") != stones.hash("alice-7"))
        #expect(stones.digest(of: ["bob-9", "alice-7"]) == stones.digest(of: ["alice-7", "bob-9"]))
        #expect(!TombstoneFilter(nil).isForgotten("alice-7"))
    }

    // MARK: head's files

    @Test func pngAndWavHaveValidStructure() {
        let png = SampleFiles.png(width: 2, height: 1, channels: 3, pixels: [255, 0, 0, 0, 0, 255][...])
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        // IHDR's CRC over "IHDR" + its 13 bytes, as any PNG reader checks it.
        #expect(Array(png[12..<16]) == Array("IHDR".utf8))
        #expect(SampleFiles.crc32(Array("IEND".utf8)) == 0xAE42_6082, "the CRC every PNG's IEND chunk carries")
        #expect(SampleFiles.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        // A stored deflate stream bigger than one block (65535 bytes) splits into blocks, the last one flagged.
        let big = SampleFiles.zlibStored([UInt8](repeating: 1, count: 70000))
        #expect(big[2] == 0 && big.count == 2 + 5 + 65535 + 5 + (70000 - 65535) + 4)

        let wav = SampleFiles.wav([1, 0, 2, 0], channels: 1, sampleRate: 16000, float: false)
        #expect(String(decoding: wav[0..<4], as: UTF8.self) == "RIFF" && wav.count == 44 + 4)
        #expect(String(decoding: wav[36..<40], as: UTF8.self) == "data")
    }

    @Test func mediaValuesBecomeFilesByShapeAndEncoding() {
        let frames = NDArray(uint8: [UInt8](repeating: 128, count: 2 * 4 * 4 * 3), shape: [2, 4, 4, 3])
        #expect(SampleFiles.files(column: "frames", encoding: "ndarray:uint8", value: .ndarray(frames), sampleRate: 16000).map(\.name)
                == ["frames_000.png", "frames_001.png"])
        let image = NDArray(uint8: [UInt8](repeating: 1, count: 4 * 4), shape: [4, 4, 1])
        #expect(SampleFiles.files(column: "img", encoding: "ndarray:uint8", value: .ndarray(image), sampleRate: 1).map(\.name) == ["img.png"])
        let pcm = NDArray(int16: [1, -1, 2, -2], shape: [2, 2])
        #expect(SampleFiles.files(column: "audio", encoding: "ndarray:int16", value: .ndarray(pcm), sampleRate: 16000).map(\.name) == ["audio.wav"])
        #expect(SampleFiles.files(column: "thumb", encoding: "jpeg", value: .bytes([0xFF, 0xD8]), sampleRate: 1)
                == [.init(name: "thumb.jpg", bytes: [0xFF, 0xD8])])
        #expect(SampleFiles.summary(.ndarray(pcm)).hasPrefix("int16 (2, 2), 8 bytes, sha256 "))
        #expect(SampleFiles.summary(.string("hello")) == "hello")
    }

    // MARK: tables

    @Test func tablesAlignColumnsAndTrimTrailingSpace() {
        #expect(TextTable.render([["A", "LONG HEADER", "C"], ["wide cell", "x", ""]]) == "A          LONG HEADER  C\nwide cell  x")
    }
}

/// The streaming shard reader against the in-memory one, on shards written by MDSWriter.
@Suite struct ShardStreamTests {
    @Test func streamingReadMatchesWholeShardReadAndCatchesAFlippedByte() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stream-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var options = MDSWriterOptions(sizeLimit: 1 << 16, zstdLevel: 3, hashes: [.sha256, .xxh64])
        options.naming = .contentAddressed
        let writer = try MDSWriter(directory: directory, columns: [
            MDSColumn(name: "__key__", encoding: .str), try MDSColumn(name: "blob", encodingName: "bytes")], options: options)
        // Samples bigger than the reader's 1 MiB chunk and the zstd block size, so samples straddle chunks.
        for index in 0..<3 {
            try writer.write(["__key__": .string("k\(index)"), "blob": .bytes((0..<(1_500_000 + index)).map { UInt8(truncatingIfNeeded: $0 * 7 + index) })])
        }
        let entries = try writer.finish()
        let reader = MDSReader(directory: directory, index: MDSIndex(shards: entries))
        var streamed: [[String: MDSValue]] = []
        for entry in entries {
            try reader.forEachSample(in: entry) { _, sample in streamed.append(sample) }
        }
        #expect(streamed == (try entries.flatMap { try reader.readShard($0, verifyHashes: true) }))
        #expect(streamed.count == 3)

        // The frames carry zstd's content checksum (frame header descriptor bit 2).
        let path = directory.appendingPathComponent(entries[0].storedFile.basename).path
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(bytes[4] & 0x04 != 0, "zstd frame without content checksum")
        bytes[bytes.count / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: ShardError.self) { try reader.forEachSample(in: entries[0]) { _, _ in } }
        #expect(error.code == .hashMismatch && error.message.contains(path), "\(error)")
        // Without hash checks, zstd's own checksum (or its block checks) still refuses the changed frame.
        #expect(throws: ShardError.self) { try reader.forEachSample(in: entries[0], verifyHashes: false) { _, _ in } }
    }

    @Test func memoryStaysAboutAChunkPlusASampleWhateverTheShardSize() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bounded-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let writer = try MDSWriter(directory: directory, columns: [
            MDSColumn(name: "__key__", encoding: .str), try MDSColumn(name: "blob", encodingName: "bytes")], options: MDSWriterOptions())
        let sampleBytes = 200_000
        for index in 0..<120 {
            try writer.write(["__key__": .string("k\(index)"), "blob": .bytes((0..<sampleBytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) })])
        }
        let entries = try writer.finish()
        #expect(entries.count == 1 && entries[0].rawData.bytes > 24_000_000, "one big shard")
        var seen = 0
        let summary = try MDSReader(directory: directory, index: MDSIndex(shards: entries)).forEachSample(in: entries[0]) { _, _ in seen += 1 }
        #expect(seen == 120 && summary.samples == 120 && summary.rawBytes == entries[0].rawData.bytes)
        // A 24 MB shard is read holding at most a 1 MiB chunk, one zstd output block and one sample.
        #expect(summary.peakBufferedBytes <= (1 << 20) + (1 << 17) + sampleBytes + 64, "held \(summary.peakBufferedBytes) bytes")
    }
}
