import Dataset
import Foundation
import MDS
import SystemIO
import Testing

/// What every `DatasetStore` must do for the dataset tools, written once against the protocol so each store runs the
/// same checks: `LocalDatasetStoreContractTests` runs them on a directory; an object store's tests run them by
/// passing their own factory, e.g.
///
///     @Test(arguments: DatasetStoreContract.checks.map(\.name))
///     func contract(_ name: String) throws { try DatasetStoreContract.run(name) { try makeS3Store($0) } }
///
/// The factory gets a dataset name and returns an empty store for it; every check makes a fresh one.
enum DatasetStoreContract {
    typealias Factory = (_ dataset: String) throws -> any DatasetStore

    static let checks: [(name: String, check: @Sendable (any DatasetStore) throws -> Void)] = [
        ("files of a version are listed with sizes", filesAreListed),
        ("a local file holds a version's file, errors pass through", localFileHoldsTheBytes),
        ("replace creates and replaces a version's file", replaceIsAllOrNothing),
        ("add puts a local file into a version once", addIsIdempotent),
        ("removing a file leaves other versions theirs", removeFileKeepsOtherVersions),
        ("deleting a version keeps what other versions list", deleteVersionKeepsSharedFiles),
        ("dataset files are read, replaced and removed", datasetFiles),
        ("scratch directories are local and removable", scratch),
        ("a staged version names its store", stagedVersionNamesItsStore),
        ("verify, diff, forget and gc work through the store", toolsThroughTheStore),
        ("key indexes are read, built and kept right by forget through the store", keyIndexThroughTheStore),
    ]

    static func run(_ name: String, _ makeStore: Factory) throws {
        let check = try #require(checks.first { $0.name == name }, "no contract check named \(name)")
        try check.check(try makeStore("fb"))
    }

    // MARK: Publishing, as a run does

    /// A real MDS shard (content-addressed, zstd, sha256) holding one sample per key, written into `directory`.
    static func writeShard(keys: [String], into directory: String) throws -> MDSShardEntry {
        var options = MDSWriterOptions(sizeLimit: 1 << 20, zstdLevel: 3, hashes: [.sha256])
        options.naming = .contentAddressed
        let writer = try MDSWriter(directory: URL(fileURLWithPath: directory, isDirectory: true),
                                   columns: [MDSColumn(name: SampleKey.column, encoding: .str), MDSColumn(name: "label", encoding: .str)],
                                   options: options)
        for key in keys { try writer.write([SampleKey.column: .string(key), "label": .string("label-of-\(key)")]) }
        let entries = try writer.finish()
        try #require(entries.count == 1)
        return entries[0]
    }

    static func record(_ dataset: String, _ version: String) -> VersionBuilder.RunRecord {
        VersionBuilder.RunRecord(
            dataset: dataset, version: version, runId: "run-\(version)", createdAt: "2026-11-25T00:00:0\(VersionName.number(version)!)Z",
            toolVersion: "test", pipeline: .init(name: dataset, path: "pipelines/\(dataset).yaml", configSha256: "c0ffee"),
            cursor: .init(column: "id", type: "int8", from: nil, to: "10"),
            columns: [.init(name: SampleKey.column, encoding: "str", source: "id", transform: "key"),
                      .init(name: "label", encoding: "str", source: "label", transform: "value")],
            rowsRead: 10, quarantine: .init(count: 0, byReason: [:], file: nil), durationSeconds: 1, sourceBytes: 10)
    }

    /// Publishes the next version: the newest version's shards shared, plus one new shard holding `keys`.
    @discardableResult
    static func publish(_ store: any DatasetStore, keys: [String]) throws -> String {
        let latest = try store.versions().last
        let version = VersionName.next(after: try store.versions())
        let staged = try store.stageVersion(runId: "contract-\(version)")
        let entry = try writeShard(keys: keys, into: staged.workDirectory + "/train")
        try staged.stage("train/\(entry.storedFile.basename)")
        let built = try VersionBuilder(parent: try latest.map { try store.parent($0) }, splitNames: ["train"])
            .build(run: record(store.dataset, version), sealed: ["train": [entry]])
        try store.assemble(built, into: staged)
        try staged.commit(as: version, expectedLatest: latest)
        return version
    }

    /// `publish` for a pipeline with a key index (change_column, dedupe:): keys.idx inherits the parent's index, read
    /// as a run reads it (a local copy through the store), and adds the new shard's keys.
    @discardableResult
    static func publishIndexed(_ store: any DatasetStore, keys: [String]) throws -> String {
        let latest = try store.versions().last
        let version = VersionName.next(after: try store.versions())
        let staged = try store.stageVersion(runId: "contract-\(version)")
        let entry = try writeShard(keys: keys, into: staged.workDirectory + "/train")
        try staged.stage("train/\(entry.storedFile.basename)")
        let parent = try latest.map { try store.parent($0) }
        let parentCopy = staged.workDirectory + "/.parent-keys.idx"
        defer { FileSystem.removeIfPresent(parentCopy) }
        let base = try parent.flatMap { try KeyIndex.localCopy(of: $0.manifest.version, manifest: $0.manifest, store: store, to: parentCopy) }
        var update = KeyIndexUpdate(base: base, dedupeRule: "")
        for key in keys { update.add(key: .ofKey(key), shard: "train/\(entry.storedFile.basename)", value: nil) }
        try update.write(base: base, to: staged.workDirectory + "/" + KeyIndex.fileName)
        try staged.stage(KeyIndex.fileName)
        var built = try VersionBuilder(parent: parent, splitNames: ["train"]).build(run: record(store.dataset, version), sealed: ["train": [entry]])
        built.manifest.keyIndex = KeyIndex.fileName
        try store.assemble(built, into: staged)
        FileSystem.removeIfPresent(parentCopy)
        try staged.commit(as: version, expectedLatest: latest)
        return version
    }

    static func shardPaths(_ store: any DatasetStore, _ version: String) throws -> [String] {
        try store.index(of: version, split: "train").shards.map { "train/\($0.storedFile.basename)" }
    }

    static func keys(_ store: any DatasetStore, _ version: String) throws -> [String] {
        var keys: [String] = []
        for entry in try store.index(of: version, split: "train").shards {
            _ = try store.withLocalFile("train/\(entry.storedFile.basename)", of: version) { path in
                try MDSShardStream.read(entry, path: path) { _, sample in
                    if case .string(let key)? = sample[SampleKey.column] { keys.append(key) }
                }
            }
        }
        return SampleKey.sorted(keys)
    }

    static func code(_ body: () throws -> Void) -> DatasetError.Code? {
        do { try body() } catch let error as DatasetError { return error.code } catch { return nil }
        return nil
    }

    // MARK: The checks

    static func filesAreListed(_ store: any DatasetStore) throws {
        let v1 = try publish(store, keys: ["1", "2"])
        let files = try store.files(of: v1)
        let shard = try #require(try shardPaths(store, v1).first)
        #expect(files.map(\.path) == files.map(\.path).sorted(), "sorted by path")
        for path in [DatasetManifest.fileName, "train/\(MDSIndex.basename)", shard] {
            #expect(files.contains { $0.path == path }, "\(path) is listed")
        }
        for file in files where file.path == DatasetManifest.fileName || file.path == shard {
            #expect(file.bytes == (try store.read(file.path, of: v1)).count, "size of \(file.path)")
        }
        #expect(code { _ = try store.files(of: "v9") } == .notFound)
    }

    static func localFileHoldsTheBytes(_ store: any DatasetStore) throws {
        let v1 = try publish(store, keys: ["1", "2"])
        let shard = try #require(try shardPaths(store, v1).first)
        let stored = try store.read(shard, of: v1)
        let local = try store.withLocalFile(shard, of: v1) { (path) throws -> String in
            #expect(FileManager.default.contents(atPath: path).map(Array.init) == stored)
            return path
        }
        #expect(local.hasPrefix("/") || !local.isEmpty)
        #expect(code { try store.withLocalFile("train/missing.mds.zstd", of: v1) { _ in } } == .corrupt, "a listed file is missing")
        #expect(code { try store.withLocalFile(shard, of: "v9") { _ in } } == .notFound)
        struct Marker: Error {}
        #expect(throws: Marker.self) { try store.withLocalFile(shard, of: v1) { _ in throw Marker() } }
        #expect(try store.withLocalFiles([(v1, shard), (v1, DatasetManifest.fileName)]) { $0.count } == 2)
    }

    static func replaceIsAllOrNothing(_ store: any DatasetStore) throws {
        let v1 = try publish(store, keys: ["1"])
        try store.replace("notes/extra.txt", of: v1, with: Array("one".utf8))
        #expect(try store.read("notes/extra.txt", of: v1) == Array("one".utf8))
        try store.replace("notes/extra.txt", of: v1, with: Array("two, longer".utf8))
        #expect(try store.read("notes/extra.txt", of: v1) == Array("two, longer".utf8))
        #expect(try store.files(of: v1).first { $0.path == "notes/extra.txt" }?.bytes == 11)
        #expect(try store.versions() == [v1], "replacing a file publishes nothing new")
    }

    static func addIsIdempotent(_ store: any DatasetStore) throws {
        let v1 = try publish(store, keys: ["1"])
        let scratch = try store.scratchDirectory(".contract-add")
        defer { store.removeScratch(prefix: ".contract-add") }
        let local = scratch + "/shard.new.mds.zstd"
        try Data("new shard".utf8).write(to: URL(fileURLWithPath: local))
        try store.add(localFile: local, as: "train/shard.new.mds.zstd", to: v1)
        #expect(try store.read("train/shard.new.mds.zstd", of: v1) == Array("new shard".utf8))
        #expect(FileManager.default.fileExists(atPath: local), "the local file stays")
        // A replayed journal adds again: the file already there is kept.
        try Data("other bytes".utf8).write(to: URL(fileURLWithPath: scratch + "/other"))
        try store.add(localFile: scratch + "/other", as: "train/shard.new.mds.zstd", to: v1)
        #expect(try store.read("train/shard.new.mds.zstd", of: v1) == Array("new shard".utf8))
    }

    static func removeFileKeepsOtherVersions(_ store: any DatasetStore) throws {
        let v1 = try publish(store, keys: ["1"])
        let v2 = try publish(store, keys: ["2"])
        let shared = try #require(try shardPaths(store, v1).first)
        #expect(try shardPaths(store, v2).contains(shared))
        try store.removeFile(shared, of: v1)
        try store.removeFile(shared, of: v1)
        #expect(code { _ = try store.read(shared, of: v1) } == .notFound)
        #expect(!(try store.files(of: v1)).contains { $0.path == shared })
        #expect(try keys(store, v2) == ["1", "2"], "v2 still has the shard v1 let go of")
    }

    static func deleteVersionKeepsSharedFiles(_ store: any DatasetStore) throws {
        let v1 = try publish(store, keys: ["1"])
        let v2 = try publish(store, keys: ["2"])
        let v3 = try publish(store, keys: ["3"])
        if store.sharesFilesBetweenVersions {
            let shard = try shardPaths(store, v1)[0]
            let inV1 = try store.files(of: v1).first { $0.path == shard }?.storage
            let inV3 = try store.files(of: v3).first { $0.path == shard }?.storage
            #expect(inV1 != nil && inV1 == inV3, "a shared shard is one stored file")
        }
        try store.deleteVersion(v2)
        #expect(try store.versions() == [v1, v3])
        #expect(code { _ = try store.manifest(of: v2) } == .notFound)
        try store.deleteVersion(v2)
        #expect(try keys(store, v3) == ["1", "2", "3"], "v3 keeps the shards it shared with v2")
        try store.deleteVersion(v1)
        _ = store.repairPointers()
        #expect(try store.versions() == [v3] && store.latestVersion == v3)
        #expect(try keys(store, v3) == ["1", "2", "3"])
        #expect(store.removeAbandonedStaging().allSatisfy { !$0.contains(v3) })
        #expect(try store.versions() == [v3])
    }

    static func datasetFiles(_ store: any DatasetStore) throws {
        _ = try publish(store, keys: ["1"])
        #expect(try store.readDatasetFile("pins.json") == nil)
        try store.writeDatasetFile("pins.json", Array("{\"pinned\": []}".utf8))
        try store.writeDatasetFile("pins.json", Array("{\"pinned\": [\"v1\"]}".utf8))
        #expect(try store.readDatasetFile("pins.json") == Array("{\"pinned\": [\"v1\"]}".utf8))
        #expect(try PinList.load(from: store) == PinList(pinned: ["v1"]))
        #expect(try store.versions() == ["v1"], "a dataset file is not a version")
        try store.removeDatasetFile("pins.json")
        try store.removeDatasetFile("pins.json")
        #expect(try store.readDatasetFile("pins.json") == nil)
        #expect(store.datasetFileLocation("pins.json").contains(store.dataset))
        var stones = Tombstones(salt: "00ff")
        stones.add(["alice"])
        try stones.save(to: store)
        #expect(try Tombstones.load(from: store) == stones)
    }

    static func scratch(_ store: any DatasetStore) throws {
        let directory = try store.scratchDirectory(".contract-scratch-1")
        #expect(directory.hasPrefix("/"), "absolute: a journal naming it outlives the working directory")
        #expect(FileManager.default.createFile(atPath: directory + "/file", contents: Data("x".utf8)))
        #expect(try store.scratchDirectory(".contract-scratch-1") == directory, "the same name is the same directory")
        store.removeScratch(prefix: ".contract-scratch-")
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    static func stagedVersionNamesItsStore(_ store: any DatasetStore) throws {
        let staged = try store.stageVersion(runId: "contract-staged")
        defer { staged.discard() }
        #expect(staged.datasetStore.dataset == store.dataset && staged.datasetStore.location == store.location)
    }

    /// The tools, on three versions sharing shards: verify reads a shared stored file once, diff reads only what
    /// differs, forget rewrites the shard holding a key in every version, gc spares the newest and pinned versions.
    static func toolsThroughTheStore(_ store: any DatasetStore) throws {
        let v1 = try publish(store, keys: (0..<10).map(String.init))
        let v2 = try publish(store, keys: (10..<20).map(String.init))
        let v3 = try publish(store, keys: (20..<30).map(String.init))

        let verifier = VersionVerifier(store: store)
        let reports = [v1, v2, v3].map { verifier.verify($0) }
        let problems = reports.flatMap(\.problems).prefix(3).map(\.description)
        #expect(problems.isEmpty, "\(problems)")
        #expect(reports.map(\.samples) == [10, 20, 30])
        if store.sharesFilesBetweenVersions { #expect(reports.map(\.shardsRead) == [1, 1, 1], "shared shards are read once") }

        let diff = try VersionDiff.between(v1, and: v3, in: store)
        #expect(diff.added == (10..<30).map(String.init) && diff.removed.isEmpty && diff.changed.isEmpty)
        #expect(diff.splits["train"]?.readShards == 2 && diff.splits["train"]?.sharedShards == 1)

        let lock = try store.lock(runId: "contract")
        let holdingThree = try shardPaths(store, v1)[0]
        let report = try Forget.run(.keys(["3", "15"]), reason: "contract", store: store)
        #expect(report.keysFound == 2 && report.tombstonesAdded == 2 && !report.resumed)
        #expect(report.versions.map(\.samplesRemoved) == [1, 2, 2])
        #expect(!Forget.isInterrupted(in: store))
        #expect(try keys(store, v1) == (0..<10).map(String.init).filter { $0 != "3" })
        #expect(try keys(store, v3).count == 28)
        #expect(try store.manifest(of: v3).redactions.count == 1)
        for version in [v1, v2, v3] {
            #expect(!(try store.files(of: version)).contains { $0.path == holdingThree }, "the old shard is gone from \(version)")
        }
        #expect(!(try store.files(of: v1)).contains { $0.path.contains(".forget") }, "no work file inside a version")
        let after = VersionVerifier(store: store)
        #expect([v1, v2, v3].allSatisfy { after.verify($0).ok })
        #expect(try TombstoneFilter(Tombstones.load(from: store)).isForgotten("15"))

        var pins = PinList()
        _ = pins.set(v1, pinned: true)
        try pins.save(to: store)
        let candidates = try store.versions().map { try GarbageCollection.Candidate(store.manifest(of: $0)) }
        let plan = GarbageCollection.plan(candidates, pins: try PinList.load(from: store), rule: .keepNewest(1),
                                          sharedFiles: store.sharesFilesBetweenVersions)
        #expect(plan.remove == [v2] && plan.spared == [v1: "pinned"])
        try GarbageCollection.apply(plan, in: store)
        withExtendedLifetime(lock) {}
        #expect(try store.versions() == [v1, v3])
        #expect(try keys(store, v3).count == 28, "v3 keeps every shard it shared with v2")
        #expect(VersionVerifier(store: store).verify(v3).ok)
    }

    /// keys.idx of two versions (the second inheriting the first's): copied out of the store for lookups, built from a
    /// version's shards through the store, and after a forget by key without the key and naming the rewritten shard.
    /// Forget finds the key from the indexes alone: a shard they do not name is never opened (here it is damaged).
    static func keyIndexThroughTheStore(_ store: any DatasetStore) throws {
        let v1 = try publishIndexed(store, keys: (0..<10).map(String.init))
        let v2 = try publishIndexed(store, keys: (10..<20).map(String.init))
        let scratch = try store.scratchDirectory(".contract-keys")
        defer { store.removeScratch(prefix: ".contract-keys") }
        func index(_ version: String) throws -> KeyIndex {
            try #require(try KeyIndex.localCopy(of: version, manifest: store.manifest(of: version), store: store, to: "\(scratch)/\(version).idx"))
        }
        let shardA = try shardPaths(store, v1)[0]
        let shardB = try #require(try shardPaths(store, v2).first { $0 != shardA })
        let lineage = try index(v2)
        #expect(lineage.keyCount == 20 && lineage.shards(holding: "3") == [shardA] && lineage.shards(holding: "15") == [shardB])
        let built = try KeyIndex.build(from: store.parent(v2), store: store, dedupeColumn: nil, to: "\(scratch)/built.idx")
        #expect(built.keyCount == 20 && built.shards(holding: "3") == [shardA] && built.shards(holding: "15") == [shardB])

        let original = try store.withLocalFile(shardB, of: v2) { try FileSystem.readAll($0, role: "shard") ?? [] }
        try store.replace(shardB, of: v2, with: [UInt8](repeating: 0, count: original.count))
        let lock = try store.lock(runId: "contract")
        let report = try Forget.run(.keys(["3"]), reason: "contract", store: store)
        withExtendedLifetime(lock) {}
        try store.replace(shardB, of: v2, with: original)
        #expect(report.keysFound == 1 && report.versions.map(\.samplesRemoved) == [1, 1])
        for version in [v1, v2] {
            let after = try index(version)
            let rewritten = try shardPaths(store, version).first { $0 != shardB }
            #expect(rewritten != nil && rewritten != shardA)
            #expect(after.shards(holding: "3").isEmpty && after.shards(holding: "4") == rewritten.map { [$0] })
            #expect(after.keyCount == (version == v1 ? 9 : 19))
        }
        #expect(try keys(store, v2) == (0..<20).map(String.init).filter { $0 != "3" })
        #expect([v1, v2].allSatisfy { VersionVerifier(store: store).verify($0).ok })
    }
}

/// The contract on the local file system, one test case per check.
@Suite struct LocalDatasetStoreContractTests {
    @Test(arguments: DatasetStoreContract.checks.map(\.name))
    func contract(_ name: String) throws {
        let root = LocalDatasetStoreTests.Root()
        try DatasetStoreContract.run(name) { LocalDatasetStore(outputRoot: root.path, dataset: $0) }
    }

    @Test func addLinksAndDeletionDebrisIsRemoved() throws {
        let root = LocalDatasetStoreTests.Root()
        let store = LocalDatasetStore(outputRoot: root.path, dataset: "fb")
        let v1 = try DatasetStoreContract.publish(store, keys: ["1"])
        let scratch = try store.scratchDirectory(".forget-test")
        #expect(scratch == root.path + "/fb/.forget-test", "next to the versions, on their file system")
        try Data("new".utf8).write(to: URL(fileURLWithPath: scratch + "/new"))
        try store.add(localFile: scratch + "/new", as: "train/new", to: v1)
        #expect(FileSystem.inode(scratch + "/new") == FileSystem.inode(root.path + "/fb/v1/train/new"), "a hard link, not a copy")
        // As if a gc died between hiding a version and deleting its files.
        try FileSystem.createDirectory(root.path + "/fb/.gc-v7-99/train")
        #expect(store.removeAbandonedStaging().contains(".gc-v7-99"))
        try FileSystem.createDirectory(root.path + "/fb/.gc-v8-99/train")
        try store.deleteVersion("v5")
        #expect(!FileSystem.exists(root.path + "/fb/.gc-v8-99"), "the next deletion removes the debris first")
        #expect(try store.versions() == [v1])
    }

    @Test func theRootListsItsDatasets() throws {
        let root = LocalDatasetStoreTests.Root()
        let datasetRoot = try DatasetStores.openRoot(root.path)
        #expect(try datasetRoot.datasetNames() == [])
        try DatasetStoreContract.publish(datasetRoot.store("b"), keys: ["1"])
        try DatasetStoreContract.publish(datasetRoot.store("a"), keys: ["1"])
        try FileManager.default.createDirectory(atPath: root.path + "/.hidden", withIntermediateDirectories: true)
        #expect(try datasetRoot.datasetNames() == ["a", "b"])
        #expect(try datasetRoot.store("a").versions() == ["v1"])
        let catalog = try DatasetCatalog.load(datasetRoot)
        #expect(catalog.datasets.map(\.dataset) == ["a", "b"] && catalog.root == root.path)
        #expect(throws: DatasetError.self) { _ = try DatasetStores.openRoot(root.path + "/missing").datasetNames() }
        #expect(throws: DatasetError.self) { _ = try DatasetStores.openRoot("gs://bucket/prefix") }
    }
}
