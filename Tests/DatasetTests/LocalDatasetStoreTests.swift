import Dataset
import Foundation
import MDS
import SystemIO
import Testing

@Suite struct LocalDatasetStoreTests {
    /// A fresh output root under the temporary directory, removed afterwards.
    final class Root {
        let path: String
        init() {
            path = NSTemporaryDirectory() + "etl-store-\(UUID().uuidString.prefix(8))"
            try! FileSystem.createDirectory(path)
        }
        deinit { try? FileSystem.removeTree(path) }
    }

    /// Stages a version with one shard file in `train/` and its manifest, as a run would.
    static func stage(_ store: LocalDatasetStore, version: String, parent: VersionBuilder.Parent?, shard: String,
                      bytes: [UInt8] = Array(repeating: 7, count: 100)) throws -> (any StagedVersion, VersionBuilder.Version) {
        let staged = try store.stageVersion(runId: UUID().uuidString)
        try FileSystem.createDirectory(staged.workDirectory + "/train")
        var file = try SystemFile.createExclusive(staged.workDirectory + "/train/" + shard, role: "shard")
        try file.write(bytes)
        try file.close()
        try staged.stage("train/" + shard)
        let built = try VersionBuilder(parent: parent, splitNames: ["train"]).build(
            run: VersionBuilderTests.run(version),
            sealed: ["train": [VersionBuilderTests.shard(shard, samples: 1, bytes: bytes.count)]])
        try store.assemble(built, into: staged)
        return (staged, built)
    }

    @Test func publishesListsReadsAndSharesByHardLink() throws {
        let root = Root()
        let store = LocalDatasetStore(outputRoot: root.path, dataset: "fb")
        #expect(try store.versions() == [])
        let (first, _) = try Self.stage(store, version: "v1", parent: nil, shard: "shard.a.mds.zstd")
        #expect(try store.versions() == [], "a staged version is invisible")
        try first.commit(as: "v1", expectedLatest: nil)
        #expect(try store.versions() == ["v1"])
        #expect(String(decoding: try FileSystem.readAll(root.path + "/fb/LATEST", role: "LATEST")!, as: UTF8.self) == "v1\n")
        #expect(try store.manifest(of: "v1").version == "v1")
        #expect(try store.index(of: "v1", split: "train").shards.count == 1)

        let (second, built) = try Self.stage(store, version: "v2", parent: try store.parent("v1"), shard: "shard.b.mds.zstd")
        #expect(built.shared.count == 1)
        try second.commit(as: "v2", expectedLatest: "v1")
        #expect(try store.versions() == ["v1", "v2"])
        let a1 = FileSystem.inode(root.path + "/fb/v1/train/shard.a.mds.zstd")
        #expect(a1 != nil && a1 == FileSystem.inode(root.path + "/fb/v2/train/shard.a.mds.zstd"), "parent shard is a hard link")
        #expect(try store.index(of: "v2", split: "train").shards.map(\.storedFile.basename) == ["shard.a.mds.zstd", "shard.b.mds.zstd"])
    }

    @Test func commitIsACompareAndSwapOnTheNewestVersion() throws {
        let root = Root()
        let store = LocalDatasetStore(outputRoot: root.path, dataset: "fb")
        let (winner, _) = try Self.stage(store, version: "v1", parent: nil, shard: "shard.a.mds.zstd")
        let (loser, _) = try Self.stage(store, version: "v1", parent: nil, shard: "shard.b.mds.zstd")
        try winner.commit(as: "v1", expectedLatest: nil)
        #expect(throws: DatasetError.self) { try loser.commit(as: "v1", expectedLatest: nil) }
        do { try loser.commit(as: "v1", expectedLatest: nil) } catch { #expect(error.code == .conflict) }
        loser.discard()
        #expect(try store.versions() == ["v1"])
        #expect(try store.index(of: "v1", split: "train").shards.map(\.storedFile.basename) == ["shard.a.mds.zstd"])
        let entries = try FileSystem.contentsOfDirectory(root.path + "/fb")!.sorted()
        #expect(entries == ["LATEST", "v1"], "the loser leaves nothing: \(entries)")
    }

    @Test func racingThreadsPublishExactlyOnce() throws {
        let root = Root()
        let store = LocalDatasetStore(outputRoot: root.path, dataset: "fb")
        nonisolated(unsafe) let staged = try (0..<8).map { try Self.stage(store, version: "v1", parent: nil, shard: "shard.\($0).mds.zstd").0 }
        let wins = Counter()
        DispatchQueue.concurrentPerform(iterations: staged.count) { index in
            // The check of the newest version races too; only the rename onto v1 decides.
            if (try? staged[index].commit(as: "v1", expectedLatest: nil)) != nil { wins.add() } else { staged[index].discard() }
        }
        #expect(wins.value == 1)
        #expect(try store.versions() == ["v1"])
    }

    @Test func aParentShardOfTheWrongSizeIsNotShared() throws {
        let root = Root()
        let store = LocalDatasetStore(outputRoot: root.path, dataset: "fb")
        let (first, _) = try Self.stage(store, version: "v1", parent: nil, shard: "shard.a.mds.zstd")
        try first.commit(as: "v1", expectedLatest: nil)
        // A truncated shard must not spread into every later version.
        truncate(root.path + "/fb/v1/train/shard.a.mds.zstd", 10)
        #expect {
            _ = try Self.stage(store, version: "v2", parent: try store.parent("v1"), shard: "shard.b.mds.zstd")
        } throws: { ($0 as? DatasetError)?.code == .corrupt && "\($0)".contains("100") }
        try FileSystem.removeTree(root.path + "/fb/v1/train/shard.a.mds.zstd")
        #expect {
            _ = try Self.stage(store, version: "v2", parent: try store.parent("v1"), shard: "shard.b.mds.zstd")
        } throws: { ($0 as? DatasetError)?.code == .corrupt && "\($0)".contains("missing") }
    }

    @Test func lockIsExclusiveAndReleasedWhenDropped() throws {
        let root = Root()
        let store = LocalDatasetStore(outputRoot: root.path, dataset: "fb")
        var held: DatasetLock? = try store.lock(runId: "one")
        // flock is per open file description, so a second open in this process conflicts like another process would.
        #expect { _ = try store.lock(runId: "two") } throws: { ($0 as? DatasetError)?.code == .locked && "\($0)".contains("run one") }
        withExtendedLifetime(held) {}
        held = nil
        #expect(throws: Never.self) { _ = try store.lock(runId: "three") }
    }

    @Test func staleLatestIsRepairedAndDebrisRemoved() throws {
        let root = Root()
        let store = LocalDatasetStore(outputRoot: root.path, dataset: "fb")
        let (first, _) = try Self.stage(store, version: "v1", parent: nil, shard: "shard.a.mds.zstd")
        try first.commit(as: "v1", expectedLatest: nil)
        let (second, _) = try Self.stage(store, version: "v2", parent: try store.parent("v1"), shard: "shard.b.mds.zstd")
        try second.commit(as: "v2", expectedLatest: "v1")
        // As if the process died between the commit and the LATEST update.
        try FileSystem.writeAtomically(Array("v1\n".utf8), to: root.path + "/fb/LATEST", role: "LATEST")
        try FileSystem.createDirectory(root.path + "/fb/.staging-dead/train")
        try FileSystem.createDirectory(root.path + "/fb/v3")
        #expect(store.repairPointers() != nil)
        #expect(String(decoding: try FileSystem.readAll(root.path + "/fb/LATEST", role: "LATEST")!, as: UTF8.self) == "v2\n")
        #expect(store.repairPointers() == nil, "nothing to repair twice")
        #expect(store.removeAbandonedStaging() == [".staging-dead", "v3"])
        #expect(try store.versions() == ["v1", "v2"])
    }

    @Test func missingVersionIsNotFound() throws {
        let root = Root()
        let store = LocalDatasetStore(outputRoot: root.path, dataset: "fb")
        #expect { _ = try store.manifest(of: "v4") } throws: { ($0 as? DatasetError)?.code == .notFound }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
