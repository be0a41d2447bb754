import Foundation
import MDS
import SystemIO

extension KeyIndex {
    /// The dedupe rule text recorded in an index for a dedupe column ("" without dedupe).
    public static func rule(dedupeColumn: String?) -> String { dedupeColumn.map { "column:\($0)" } ?? "" }

    /// Adds every sample of the given shards (in order) to `update`: used for a version written before key indexes
    /// (or with another dedupe rule), and for the shards a resumed run kept. Streams, one shard at a time.
    public static func scan(_ shards: [(split: String, entry: MDSShardEntry, path: String)], dedupeColumn: String?,
                            _ body: (_ split: String, _ basename: String, _ sample: [String: MDSValue]) throws -> Void) throws {
        for shard in shards {
            try MDSShardStream.read(shard.entry, path: shard.path, verifyHashes: false) { index, sample in
                guard case .string? = sample[SampleKey.column] else {
                    throw DatasetError(.corrupt, path: shard.path, "sample \(index) of \(shard.path) has no \(SampleKey.column); run etl verify")
                }
                try body(shard.split, shard.entry.storedFile.basename, sample)
            }
        }
    }

    /// The index of a published version's whole lineage, built by reading its shards through the store (for a version
    /// without a usable `keys.idx`), written to the local file `path`.
    public static func build(from parent: VersionBuilder.Parent, store: any DatasetStore, dedupeColumn: String?, to path: String) throws -> KeyIndex {
        var update = KeyIndexUpdate(base: nil, dedupeRule: rule(dedupeColumn: dedupeColumn))
        let version = parent.manifest.version
        for split in parent.indexes.keys.sorted() {
            for entry in parent.indexes[split]!.shards {
                // One shard at a time: an object store downloads it, and removes the copy once it is read.
                try store.withLocalFile("\(split)/\(entry.storedFile.basename)", of: version) { local in
                    try scan([(split, entry, local)], dedupeColumn: dedupeColumn) { split, basename, sample in
                        guard case .string(let key)? = sample[SampleKey.column] else { return }
                        update.add(key: KeyHash.ofKey(key), shard: "\(split)/\(basename)",
                                   value: dedupeColumn.flatMap { sample[$0] }.map(KeyHash.ofValue))
                    }
                }
            }
        }
        FileSystem.removeIfPresent(path)
        try update.write(base: nil, to: path)
        return try KeyIndex(path: path)
    }

    /// A published version's key index, kept readable for as long as the caller needs it: `withLocalFile` lends a
    /// file only while its body runs (an object store removes its download afterwards), so the file is linked (or,
    /// across file systems, copied) to the local `path` and mapped from there. nil when the version has no index.
    public static func localCopy(of version: String, manifest: DatasetManifest, store: any DatasetStore, to path: String) throws -> KeyIndex? {
        guard let name = manifest.keyIndex, try store.files(of: version).contains(where: { $0.path == name }) else { return nil }
        FileSystem.removeIfPresent(path)
        try store.withLocalFile(name, of: version) { local in
            do throws(SystemError) { try FileSystem.linkOrCopy(local, to: path, role: name) } catch { throw DatasetError(error) }
        }
        return try KeyIndex(path: path, location: store.fileLocation(name, of: version))
    }

    /// The version's index after `etl forget`: forgotten keys (and their dedupe values) dropped, rewritten shards
    /// renamed (`<split>/<old>` → `<split>/<new>`, "" when nothing is left). The bytes, for the forget journal.
    static func afterForget(_ index: KeyIndex, forgotten: Set<String>, renamed: [String: String], scratch: String) throws(DatasetError) -> [UInt8] {
        var update = KeyIndexUpdate(base: index, dedupeRule: index.dedupeRule)
        for (old, new) in renamed { update.rename(old, to: new) }
        update.removedKeys = Set(forgotten.map(KeyHash.ofKey))
        FileSystem.removeIfPresent(scratch)
        defer { FileSystem.removeIfPresent(scratch) }
        try update.write(base: index, to: scratch)
        do { return try FileSystem.readAll(scratch, role: fileName) ?? [] } catch { throw DatasetError(error) }
    }
}

/// Rewrites a published shard without some samples (by key), with the original's options, into a new
/// content-addressed file: what `etl forget` does, for a run that replaces changed rows.
public enum ShardRewrite {
    /// The new shard's entry (none when no sample is left), written into `directory`.
    public static func rewrite(_ entry: MDSShardEntry, path: String, dropping keys: Set<String>, into directory: String) throws -> [MDSShardEntry] {
        try Forget.rewrite(entry, path: path, dropping: keys, into: directory)
    }
}

extension Forget {
    /// The shards (`<split>/<basename>`) that hold any of the keys, from every version's key index; nil when the
    /// selector is not by key or a version has no index (then every shard is read). `present`: each version's files.
    static func indexedShards(_ selector: Selector, manifests: [String: DatasetManifest], present: [String: Set<String>],
                              store: any DatasetStore) throws -> Set<String>? {
        guard case .keys(let keys) = selector, !manifests.isEmpty else { return nil }
        var shards = Set<String>()
        for (version, manifest) in manifests {
            guard let name = manifest.keyIndex, present[version]?.contains(name) == true else { return nil }
            try store.withLocalFile(name, of: version) { local in
                let index = try KeyIndex(path: local, location: store.fileLocation(name, of: version))
                for key in keys { shards.formUnion(index.shards(holding: key)) }
            }
        }
        return shards
    }

    /// The version's keys.idx without the forgotten keys and with rewritten shards renamed, for the journal; nil when
    /// the version has no index or its index is unchanged. The new index is built in `work` (forget's scratch).
    static func keyIndexWrite(store: any DatasetStore, version: String, present: Set<String>, manifest: DatasetManifest,
                              forgotten: Set<String>, renamed: [(String, String)], work: String) throws -> ForgetJournal.FileWrite? {
        guard let name = manifest.keyIndex, present.contains(name) else { return nil }
        return try store.withLocalFile(name, of: version) { (local) throws(DatasetError) -> ForgetJournal.FileWrite? in
            let index = try KeyIndex(path: local, location: store.fileLocation(name, of: version))
            let listed = Set(index.shards)
            let relevant = renamed.filter { listed.contains($0.0) }
            guard !relevant.isEmpty || forgotten.contains(where: { !index.shards(holding: $0).isEmpty }) else { return nil }
            let bytes = try KeyIndex.afterForget(index, forgotten: forgotten, renamed: Dictionary(relevant, uniquingKeysWith: { a, _ in a }),
                                                 scratch: "\(work)/\(version).\(name).forget-\(getpid())")
            return ForgetJournal.FileWrite(version: version, path: name, bytes: Data(bytes))
        }
    }
}
