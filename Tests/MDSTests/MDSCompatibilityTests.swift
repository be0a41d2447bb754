import Foundation
import MDS
import Testing

/// Holds the reader and writer to the shards written by the real mosaicml-streaming 0.13.0.
@Suite struct MDSCompatibilityTests {
    static let variants: [(directory: URL, options: MDSWriterOptions)] = [
        (MDSFixtures.zstdDirectory, MDSWriterOptions(sizeLimit: 4096, zstdLevel: 3, hashes: [.sha256, .xxh64])),
        (MDSFixtures.rawDirectory, MDSWriterOptions(sizeLimit: 1 << 26, zstdLevel: nil, hashes: [.sha256])),
    ]

    @Test(arguments: [MDSFixtures.zstdDirectory, MDSFixtures.rawDirectory])
    func readerDecodesFixtureToExpectedSamples(directory: URL) throws {
        let expected = try MDSFixtures.expected()
        let reader = try MDSReader(directory: directory)
        #expect(reader.sampleCount == expected.samples.count)
        var decoded: [[String: MDSValue]] = []
        try reader.forEachSample(verifyHashes: true) { decoded.append($0) }
        #expect(decoded.count == expected.samples.count)
        for (index, (got, want)) in zip(decoded, expected.samples).enumerated() {
            #expect(got == want, "sample \(index)")
        }
        // readShard gives the same samples shard by shard.
        let byShard = try reader.index.shards.flatMap { try reader.readShard($0, verifyHashes: true) }
        #expect(byShard == decoded)
    }

    @Test func zstdFixtureHasThreeShardsWithContentSize() throws {
        let index = try MDSIndex.read(from: MDSFixtures.zstdDirectory)
        #expect(index.shards.map(\.samples) == [11, 8, 4])
        for shard in index.shards {
            let file = try MDSFixtures.bytes(MDSFixtures.zstdDirectory.appendingPathComponent(shard.zipData!.basename))
            #expect(Zstd.frameContentSize(of: file) == UInt64(shard.rawData.bytes))
        }
    }

    @Test(arguments: 0..<2)
    func writerReproducesFixture(variant: Int) throws {
        let (fixtureDirectory, options) = Self.variants[variant]
        let expected = try MDSFixtures.expected()
        let fixtureIndex = try MDSIndex.read(from: fixtureDirectory)
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }

        // Columns deliberately in expected.json's (unsorted) order: the writer sorts them like mosaicml.
        let writer = try MDSWriter(directory: output, columns: expected.columns, options: options)
        for sample in expected.samples { try writer.write(sample) }
        #expect(writer.samplesWritten == expected.samples.count)
        let entries = try writer.finish()

        #expect(entries.count == fixtureIndex.shards.count)
        for (ours, theirs) in zip(entries, fixtureIndex.shards) {
            // Everything but the compressed bytes must match: boundaries, raw sizes, raw hashes, config.
            var comparable = ours
            comparable.zipData = theirs.zipData
            #expect(comparable == theirs)
            #expect(ours.zipData?.basename == theirs.zipData?.basename)
            #expect(ours.zipData?.hashes.keys.sorted() == theirs.zipData?.hashes.keys.sorted())

            let ourFile = try MDSFixtures.bytes(output.appendingPathComponent(ours.storedFile.basename))
            let theirFile = try MDSFixtures.bytes(fixtureDirectory.appendingPathComponent(theirs.storedFile.basename))
            #expect(ourFile.count == ours.storedFile.bytes)
            if ours.compression == nil {
                expectSameBytes(ourFile, theirFile, "raw shard \(ours.rawData.basename)")
            } else {
                #expect(Zstd.frameContentSize(of: ourFile) == UInt64(ours.rawData.bytes))
                let ourRaw = try Zstd.decompress(ourFile)
                let theirRaw = try Zstd.decompress(theirFile)
                expectSameBytes(ourRaw, theirRaw, "decompressed \(ours.storedFile.basename)")
            }
        }

        // index.json: byte-identical to mosaicml's once the compressed files' sizes and hashes are swapped in.
        var withTheirZipData = MDSIndex(shards: entries)
        for position in withTheirZipData.shards.indices {
            withTheirZipData.shards[position].zipData = fixtureIndex.shards[position].zipData
        }
        let fixtureIndexBytes = try MDSFixtures.bytes(fixtureDirectory.appendingPathComponent("index.json"))
        expectSameBytes(withTheirZipData.jsonBytes(), fixtureIndexBytes, "index.json")

        // The index we write is read back to the same value, and only shards and index.json remain.
        try MDSIndex(shards: entries).write(to: output)
        #expect(try MDSIndex.read(from: output) == MDSIndex(shards: entries))
        #expect(try MDSFixtures.listing(output) == (entries.map(\.storedFile.basename) + ["index.json"]).sorted())

        // And our reader, verifying hashes, gets the samples back.
        var decoded: [[String: MDSValue]] = []
        try MDSReader(directory: output).forEachSample(verifyHashes: true) { decoded.append($0) }
        #expect(decoded == expected.samples)
    }

    @Test func corruptedShardFailsHashVerification() throws {
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        for name in ["index.json", "shard.00000.mds"] {
            try FileManager.default.copyItem(
                at: MDSFixtures.rawDirectory.appendingPathComponent(name), to: output.appendingPathComponent(name))
        }
        let shardURL = output.appendingPathComponent("shard.00000.mds")
        var bytes = try MDSFixtures.bytes(shardURL)
        bytes[bytes.count - 1] ^= 0xff  // last byte of the last sample's float64 `weight`
        try Data(bytes).write(to: shardURL)

        let reader = try MDSReader(directory: output)
        let error = try #require(throws: ShardError.self) {
            try reader.readShard(reader.index.shards[0], verifyHashes: true)
        }
        #expect(error.code == .hashMismatch)
        #expect(error.path == shardURL.path)
        // Without verification the bytes still parse (a float is a float); the structure checks pass.
        #expect(try reader.readShard(reader.index.shards[0], verifyHashes: false).count == 23)
    }

    @Test func truncatedShardIsReportedWithItsPath() throws {
        let output = try MDSFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        var index = try MDSIndex.read(from: MDSFixtures.rawDirectory)
        let bytes = try MDSFixtures.bytes(MDSFixtures.rawDirectory.appendingPathComponent("shard.00000.mds"))
        try Data(bytes.dropLast(10)).write(to: output.appendingPathComponent("shard.00000.mds"))
        index.shards[0].rawData.bytes -= 10
        try index.write(to: output)

        let error = try #require(throws: ShardError.self) {
            try MDSReader(directory: output).forEachSample { _ in }
        }
        #expect(error.code == .corruptShard)
        #expect(error.description.contains(output.appendingPathComponent("shard.00000.mds").path))
    }
}
