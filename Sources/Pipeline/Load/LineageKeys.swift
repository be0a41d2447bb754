import Dataset
import Foundation
import MDS
import SystemIO

/// What a run of a pipeline with `source.change_column` or `dedupe:` knows about the keys and dedupe values its
/// parent lineage published, and what it does about them:
/// - **replace**: a sample written under a key the lineage holds replaces it: the parent shards holding the old sample
///   are rewritten without it (new content-addressed files; every other shard stays shared);
/// - **dedupe**: a sample whose dedupe value the lineage (or this run) already published is not written.
///
/// The lineage is looked up in the parent's `keys.idx` (memory-mapped, binary-searched; built once by reading the
/// parent's shards when the parent has none, or one made with another dedupe rule). Everything of the parent is read
/// through the store (`withLocalFile`), so an object store's versions work as a directory's do; the index the run
/// consults is a local file in the run's work directory (linked from the store's file, or downloaded). What this run adds is kept in
/// memory: per written sample its key hash and dedupe hash (32 bytes), plus a set of this run's dedupe values, and the
/// keys it replaces. At the end the parent's index and the additions are merged into the new version's `keys.idx`.
final class LineageKeys {
    let replace: Bool
    let dedupeColumn: String?
    private let parent: VersionBuilder.Parent?
    private let store: any DatasetStore
    /// The parent lineage's index (nil without parent).
    private let base: KeyIndex?
    private let staged: any StagedVersion
    /// The parent's index (its local copy, or one built from its shards) lives here until the run's own is written.
    private let scratchPath: String
    private var runValues = Set<KeyHash>()
    /// Per split, in the order written: each sample's key hash and dedupe hash.
    private var written: [String: [(key: KeyHash, value: KeyHash?)]] = [:]
    /// Parent shard (`<split>/<basename>`) → keys of samples in it that this run replaces.
    private var replacements: [String: Set<String>] = [:]
    private(set) var replacedKeys = 0
    private(set) var deduplicated = 0

    static let scratchName = ".lineage-keys.idx"

    init(config: PipelineConfig, parent: VersionBuilder.Parent?, store: any DatasetStore, staged: any StagedVersion,
         resumedSealed: [String: [MDSShardEntry]], notice: (String) -> Void) throws {
        replace = config.source.changeColumn != nil
        dedupeColumn = config.dedupe?.column
        self.parent = parent
        self.store = store
        self.staged = staged
        scratchPath = "\(staged.workDirectory)/\(Self.scratchName)"
        FileSystem.removeIfPresent(scratchPath)
        let rule = KeyIndex.rule(dedupeColumn: dedupeColumn)
        if let parent {
            let version = parent.manifest.version
            if let index = try KeyIndex.localCopy(of: version, manifest: parent.manifest, store: store, to: scratchPath),
               index.dedupeRule == rule {
                base = index
            } else {
                notice("\(version) has no key index for this pipeline's rules: reading its shards once to build it")
                base = try KeyIndex.build(from: parent, store: store, dedupeColumn: dedupeColumn, to: scratchPath)
            }
        } else {
            base = nil
        }
        // A resumed run kept shards of its first attempt: their samples count as written (and replace what they replace).
        let kept = resumedSealed.keys.sorted().flatMap { split in
            resumedSealed[split]!.map { (split, $0, "\(staged.workDirectory)/\(split)/\($0.storedFile.basename)") }
        }
        try KeyIndex.scan(kept, dedupeColumn: dedupeColumn) { split, _, sample in
            guard case .string(let key)? = sample[SamplePlan.keyColumnName] else { return }
            recordWritten(key: key, value: dedupeColumn.flatMap { sample[$0] }, split: split)
        }
    }

    /// Whether a sample's dedupe value (`value`: its dedupe column) was published before, by another key (a changed
    /// row keeps its media, and must replace its old sample rather than be dropped as its duplicate).
    func isDuplicate(key: String, value: MDSValue?) -> Bool {
        guard dedupeColumn != nil, let value = value.map(KeyHash.ofValue) else { return false }
        if runValues.contains(value) || base?.holdsValue(value, otherThan: KeyHash.ofKey(key)) == true {
            deduplicated += 1
            return true
        }
        return false
    }

    /// Records a sample the writer took.
    func recordWritten(key: String, value: MDSValue?, split: String) {
        let keyHash = KeyHash.ofKey(key)
        let valueHash = dedupeColumn == nil ? nil : value.map(KeyHash.ofValue)
        if let valueHash { runValues.insert(valueHash) }
        written[split, default: []].append((keyHash, valueHash))
        guard replace, let base else { return }
        let holding = base.shards(holding: keyHash)
        if !holding.isEmpty { replacedKeys += 1 }
        for shard in holding { replacements[shard, default: []].insert(key) }
    }

    /// Rewrites the parent shards holding replaced samples into the staged version, and writes and stages the new
    /// version's `keys.idx`. Returns the rewrites (split → parent basename → new entries) for VersionBuilder, and how
    /// many parent samples were removed.
    func finish(sealed: [String: [MDSShardEntry]]) throws -> (rewritten: [String: [String: [MDSShardEntry]]], removed: Int) {
        defer { FileSystem.removeIfPresent(scratchPath) }
        var update = KeyIndexUpdate(base: base, dedupeRule: KeyIndex.rule(dedupeColumn: dedupeColumn))
        var rewritten: [String: [String: [MDSShardEntry]]] = [:]
        var removed = 0
        for (shard, keys) in replacements.sorted(by: { $0.key < $1.key }) {
            let parts = shard.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let parent,
                  let entry = parent.indexes[parts[0]]?.shards.first(where: { $0.storedFile.basename == parts[1] }) else {
                throw DatasetError(.corrupt, path: store.fileLocation(KeyIndex.fileName, of: parent?.manifest.version ?? "?"),
                                   "the key index names shard \(shard), which \(parent?.manifest.version ?? "the parent") does not list; remove keys.idx to rebuild it")
            }
            let replacement = try store.withLocalFile(shard, of: parent.manifest.version) { local in
                try ShardRewrite.rewrite(entry, path: local, dropping: keys, into: "\(staged.workDirectory)/\(parts[0])")
            }
            for new in replacement { try staged.stage("\(parts[0])/\(new.storedFile.basename)") }
            rewritten[parts[0], default: [:]][parts[1]] = replacement
            removed += entry.samples - replacement.reduce(0) { $0 + $1.samples }
            update.rename(shard, to: replacement.first.map { "\(parts[0])/\($0.storedFile.basename)" } ?? "")
            for key in keys { update.removedKeys.insert(KeyHash.ofKey(key)) }
        }
        for split in sealed.keys.sorted() {
            let samples = written[split] ?? []
            var next = 0
            for entry in sealed[split]! {
                guard next + entry.samples <= samples.count else { break }
                for sample in samples[next ..< next + entry.samples] {
                    update.add(key: sample.key, shard: "\(split)/\(entry.storedFile.basename)", value: sample.value)
                }
                next += entry.samples
            }
            guard next == samples.count, next == sealed[split]!.reduce(0, { $0 + $1.samples }) else {
                throw DatasetError(.corrupt, path: staged.workDirectory,
                                   "internal: split \(split) has \(sealed[split]!.reduce(0) { $0 + $1.samples }) samples in its shards but \(samples.count) were recorded")
            }
        }
        let path = "\(staged.workDirectory)/\(KeyIndex.fileName)"
        FileSystem.removeIfPresent(path)
        try update.write(base: base, to: path)
        try staged.stage(KeyIndex.fileName)
        return (rewritten, removed)
    }
}
