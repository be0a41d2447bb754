import Dataset
import MDS
import Testing

/// VersionBuilder is pure, so every rule about what a version lists is tested here without a file system.
@Suite struct VersionBuilderTests {
    static func shard(_ name: String, samples: Int, bytes: Int = 100) -> MDSShardEntry {
        MDSShardEntry(
            columnEncodings: ["str"], columnNames: ["__key__"], columnSizes: [nil], compression: "zstd:3", hashes: ["sha256"],
            rawData: MDSFileInfo(basename: name.replacingOccurrences(of: ".zstd", with: ""), bytes: bytes * 3, hashes: [:]),
            samples: samples, sizeLimit: 1 << 26,
            zipData: MDSFileInfo(basename: name, bytes: bytes, hashes: ["sha256": String(repeating: "a", count: 64)]))
    }

    static func run(_ version: String, rows: Int = 10, from: String? = nil, to: String = "10") -> VersionBuilder.RunRecord {
        VersionBuilder.RunRecord(
            dataset: "fb", version: version, runId: "run-\(version)", createdAt: "2026-11-25T00:00:00Z", toolVersion: "test",
            pipeline: .init(name: "fb", path: "pipelines/fb.yaml", configSha256: "c0ffee"),
            cursor: .init(column: "id", type: "int8", from: from, to: to),
            columns: [.init(name: "__key__", encoding: "str", source: "id", transform: "key")],
            rowsRead: rows, quarantine: .init(count: 1, byReason: ["null_value": 1], file: "quarantine.jsonl"),
            durationSeconds: 1.5, sourceBytes: 1234)
    }

    @Test func firstVersionListsOnlyItsOwnShardsPerSplit() throws {
        let builder = VersionBuilder(parent: nil, splitNames: ["train", "val", "test"])
        let version = try builder.build(run: Self.run("v1"), sealed: [
            "train": [Self.shard("shard.a.mds.zstd", samples: 6), Self.shard("shard.b.mds.zstd", samples: 2)],
            "val": [Self.shard("shard.c.mds.zstd", samples: 1)],
        ])
        #expect(version.manifest.parent == nil)
        #expect(version.shared.isEmpty)
        #expect(version.indexes.keys.sorted() == ["train", "val"], "a split without shards gets no directory")
        #expect(version.indexes["train"]!.shards.map(\.storedFile.basename) == ["shard.a.mds.zstd", "shard.b.mds.zstd"])
        #expect(version.manifest.counts == .init(samples: 9, newSamples: 9, rowsRead: 10, quarantined: 1))
        #expect(version.manifest.splits["train"]!.shards.map(\.createdBy) == ["v1", "v1"])
        #expect(version.manifest.stats.bytesWritten == 300)
        #expect(version.indexFiles.map(\.path) == ["train/index.json", "val/index.json"])
    }

    @Test func childListsParentShardsFirstSharedNotCopied() throws {
        let v1 = try VersionBuilder(parent: nil, splitNames: ["train", "val"]).build(
            run: Self.run("v1"), sealed: ["train": [Self.shard("shard.a.mds.zstd", samples: 5)]])
        let parent = VersionBuilder.Parent(manifest: v1.manifest, indexes: v1.indexes)
        let v2 = try VersionBuilder(parent: parent, splitNames: ["train", "val"]).build(
            run: Self.run("v2", rows: 4, from: "10", to: "14"),
            sealed: ["train": [Self.shard("shard.d.mds.zstd", samples: 3)], "val": [Self.shard("shard.e.mds.zstd", samples: 1)]])
        #expect(v2.manifest.parent == "v1")
        #expect(v2.indexes["train"]!.shards.map(\.storedFile.basename) == ["shard.a.mds.zstd", "shard.d.mds.zstd"])
        #expect(v2.shared == [.init(split: "train", basename: "shard.a.mds.zstd", fromVersion: "v1", bytes: 100)])
        #expect(v2.manifest.splits["train"]!.shards.map(\.createdBy) == ["v1", "v2"], "shared shards keep their origin")
        #expect(v2.manifest.counts.samples == 9 && v2.manifest.counts.newSamples == 4)
        #expect(v2.manifest.splits["train"]!.newSamples == 3 && v2.manifest.splits["train"]!.samples == 8)
        #expect(v2.manifest.stats.bytesWritten == 200, "only this run's shards count as written")
        #expect(v2.manifest.cursor.from == "10" && v2.manifest.cursor.to == "14")
    }

    @Test func parentSplitsCarryOverWhenThisRunAddsNothingToThem() throws {
        let v1 = try VersionBuilder(parent: nil, splitNames: ["train", "test"]).build(
            run: Self.run("v1"), sealed: ["test": [Self.shard("shard.t.mds.zstd", samples: 2)]])
        let v2 = try VersionBuilder(parent: .init(manifest: v1.manifest, indexes: v1.indexes), splitNames: ["train", "test"]).build(
            run: Self.run("v2"), sealed: ["train": [Self.shard("shard.n.mds.zstd", samples: 1)]])
        #expect(v2.indexes.keys.sorted() == ["test", "train"])
        #expect(v2.manifest.splits["test"]!.newSamples == 0 && v2.manifest.splits["test"]!.samples == 2)
    }

    @Test func aShardNameListedTwiceIsRefused() throws {
        let v1 = try VersionBuilder(parent: nil, splitNames: ["train"]).build(
            run: Self.run("v1"), sealed: ["train": [Self.shard("shard.a.mds.zstd", samples: 5)]])
        #expect(throws: VersionBuilder.Failure.duplicateShard(split: "train", basename: "shard.a.mds.zstd")) {
            try VersionBuilder(parent: .init(manifest: v1.manifest, indexes: v1.indexes), splitNames: ["train"]).build(
                run: Self.run("v2"), sealed: ["train": [Self.shard("shard.a.mds.zstd", samples: 5)]])
        }
    }

    @Test func aParentWhoseManifestAndIndexDisagreeIsRefused() throws {
        let v1 = try VersionBuilder(parent: nil, splitNames: ["train"]).build(
            run: Self.run("v1"), sealed: ["train": [Self.shard("shard.a.mds.zstd", samples: 5)]])
        var indexes = v1.indexes
        indexes["train"]!.shards.append(Self.shard("shard.x.mds.zstd", samples: 1))
        #expect(throws: VersionBuilder.Failure.self) {
            try VersionBuilder(parent: .init(manifest: v1.manifest, indexes: indexes), splitNames: ["train"]).build(
                run: Self.run("v2"), sealed: [:])
        }
    }

    @Test func versionNamesSortByNumber() {
        #expect(VersionName.sorted(["v10", "v2", "v1", "x", "v01", "v0"]) == ["v1", "v2", "v10"])
        #expect(VersionName.next(after: ["v1", "v9", "v3"]) == "v10")
        #expect(VersionName.next(after: []) == "v1")
    }

    @Test func urlSchemesAreRecognisedAndPathsAreNot() {
        #expect(DatasetStores.urlScheme("s3://bucket/prefix") == "s3")
        #expect(DatasetStores.urlScheme("GS://b") == "gs")
        #expect(DatasetStores.urlScheme("/srv/datasets") == nil)
        #expect(DatasetStores.urlScheme("datasets/a:b") == nil)
        #expect(DatasetStores.urlScheme("./x://y") == nil)
        #expect(throws: DatasetError.self) { try DatasetStores.open(outputRoot: "gs://bucket/p", dataset: "fb") }
    }
}
