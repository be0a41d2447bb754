import Foundation
import MDS
import SystemIO

/// Removes samples by source key from every version of a dataset (`etl forget`), under the dataset lock.
///
/// Only the shards holding them are rewritten, with `MDSWriter` and the original shard's options (size limit,
/// compression, hashes) into new content-addressed files; every other shard stays as it is (on the local store the
/// same inode, still shared between versions). A rewritten shard is rewritten once, in the store's scratch directory,
/// and added to every version that listed it (`DatasetStore.add`: a hard link locally, an upload to an object store).
/// Per version: new shard files are added, then index.json of each changed split, quarantine.jsonl and rows.bin
/// (rows with a forgotten key dropped) and keys.idx (forgotten keys dropped, rewritten shards renamed; read through
/// `withLocalFile`, the new one built in scratch) are replaced in one step each, then manifest.json (counts, shard records, a
/// redaction entry that never names a key), and last the old shard files are removed: once every version has let
/// go of an old shard, its bytes are gone. The tombstones are saved before any version changes, so a forget
/// interrupted half-way still keeps the keys out of later runs, and running it again finishes the job (its journal).
public enum Forget {
    public enum Selector: Sendable, Equatable {
        case keys(Set<String>)
        /// Every sample whose `column` holds `value` (its text: a number as digits, a string as is).
        case group(column: String, value: String)

        var method: String {
            switch self {
            case .keys: "key"
            case .group: "group"
            }
        }
    }

    public struct VersionResult: Sendable, Codable, Equatable {
        public var version: String
        public var samplesRemoved: Int
        public var shardsRewritten: Int
        enum CodingKeys: String, CodingKey { case version, samplesRemoved = "samples_removed", shardsRewritten = "shards_rewritten" }
    }

    public struct Report: Sendable, Codable, Equatable {
        public var dataset: String
        /// Distinct keys found and removed (for `--key`, keys not found in any version are still tombstoned).
        public var keysFound: Int
        public var tombstonesAdded: Int
        public var versions: [VersionResult]
        /// An interrupted forget was found and finished first.
        public var resumed: Bool
        enum CodingKeys: String, CodingKey { case dataset, keysFound = "keys_found", tombstonesAdded = "tombstones_added", versions, resumed }
    }

    /// The text a group value is matched against.
    static func text(_ value: MDSValue) -> String? {
        switch value {
        case .string(let text): text
        case .int(let number): String(number)
        case .uint(let number): String(number)
        case .json(let text): text
        case .float(let number): String(number)
        case .bytes, .borrowedBytes, .ndarray: nil
        }
    }

    static let workPrefix = ".forget-"

    /// Whether a forget died half-way and left its journal (the next forget finishes it).
    public static func isInterrupted(in store: any DatasetStore) -> Bool {
        ((try? store.readDatasetFile(ForgetJournal.fileName)) ?? nil) != nil
    }

    private struct ShardID: Hashable {
        var split: String
        var basename: String
    }

    /// Call with the dataset lock held.
    public static func run(_ selector: Selector, reason: String, store: any DatasetStore, now: Date = Date()) throws -> Report {
        // An interrupted forget is finished first, so every version is consistent again before anything is read.
        let resumed = try ForgetJournal.finishInterrupted(store: store)
        // Work files left without a journal are debris (we hold the lock, so no forget is running).
        store.removeScratch(prefix: workPrefix)
        let versions = try store.versions()
        var manifests: [String: DatasetManifest] = [:]
        var indexes: [String: [String: MDSIndex]] = [:]
        /// Each distinct shard, with the first version listing it (where it is read from).
        var shardEntries: [ShardID: (entry: MDSShardEntry, version: String)] = [:]
        /// Each version's files (what it holds besides shards: rows.bin, quarantine.jsonl, keys.idx, README.md).
        var presentFiles: [String: Set<String>] = [:]
        for version in versions {
            let manifest = try store.manifest(of: version)
            manifests[version] = manifest
            presentFiles[version] = Set(try store.files(of: version).map(\.path))
            for split in manifest.splits.keys.sorted() {
                let index = try store.index(of: version, split: split)
                indexes[version, default: [:]][split] = index
                for entry in index.shards {
                    let id = ShardID(split: split, basename: entry.storedFile.basename)
                    if shardEntries[id] == nil {
                        shardEntries[id] = (entry, version)
                    }
                }
            }
        }
        if case .group(let column, _) = selector {
            for (version, manifest) in manifests where !manifest.columns.contains(where: { $0.name == column }) {
                throw DatasetError(.invalidLocation, path: store.fileLocation(DatasetManifest.fileName, of: version),
                                   "the samples of \(store.dataset)@\(version) have no column '\(column)', so they cannot be selected by group; forget by --key instead")
            }
        }

        // 1. Which shards hold a selected sample (each distinct shard read once, streaming).
        var matches: [ShardID: Set<String>] = [:]
        var found = Set<String>()
        // With a key index in every version, forgetting by key reads only the shards the indexes name.
        let indexed = try indexedShards(selector, manifests: manifests, present: presentFiles, store: store)
        for id in shardEntries.keys.sorted(by: { ($0.split, $0.basename) < ($1.split, $1.basename) })
            where indexed?.contains("\(id.split)/\(id.basename)") ?? true {
            let (entry, version) = shardEntries[id]!
            let path = store.fileLocation("\(id.split)/\(id.basename)", of: version)
            try store.withLocalFile("\(id.split)/\(id.basename)", of: version) { local in
                try MDSShardStream.read(entry, path: local) { index, sample in
                    guard let key = keyText(sample, path: path, index: index) else {
                        throw DatasetError(.corrupt, path: path, "sample \(index) of \(path) has no \(SampleKey.column); run etl verify")
                    }
                    if isSelected(sample, key: key, selector) {
                        matches[id, default: []].insert(key)
                        found.insert(key)
                    }
                }
            }
        }

        // 2. Tombstones first: from here on no run publishes these keys again.
        var tombstones = try Tombstones.load(from: store) ?? Tombstones(salt: Tombstones.newSalt())
        var forgotten = found
        if case .keys(let keys) = selector { forgotten.formUnion(keys) }
        let added = tombstones.add(forgotten)
        if added > 0 { try tombstones.save(to: store) }

        // 3. Rewrite each affected shard once, into the store's scratch directory (next to the versions, locally).
        let workName = "\(workPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let work = try store.scratchDirectory(workName)
        var journaled = false
        defer { if !journaled { store.removeScratch(prefix: workName) } }
        var rewritten: [ShardID: [MDSShardEntry]] = [:]
        for (id, keys) in matches {
            let (entry, version) = shardEntries[id]!
            rewritten[id] = try store.withLocalFile("\(id.split)/\(id.basename)", of: version) { local in
                try rewrite(entry, path: local, dropping: keys, into: "\(work)/\(id.split)")
            }
        }

        // 4. What each version becomes, written down as a journal before any version is touched.
        // A version's key index names shards `<split>/<basename>`: a rewritten one by its first rewrite ("" if none is left).
        let renamed = rewritten.map { id, new in ("\(id.split)/\(id.basename)", new.first.map { "\(id.split)/\($0.storedFile.basename)" } ?? "") }
        var journal = ForgetJournal(work: workName)
        var results: [VersionResult] = []
        let at = ISO8601DateFormatter().string(from: now)
        for version in versions {
            var manifest = manifests[version]!
            let present = presentFiles[version]!
            var removedHere = 0, rewrittenHere = 0
            var obsolete: [String] = []
            var links: [ForgetJournal.FileRef] = []
            var writes: [ForgetJournal.FileWrite] = []
            for split in manifest.splits.keys.sorted() {
                let index = indexes[version]![split]!
                guard index.shards.contains(where: { rewritten[ShardID(split: split, basename: $0.storedFile.basename)] != nil }) else { continue }
                var entries: [MDSShardEntry] = []
                var records: [DatasetManifest.ShardRecord] = []
                var newInSplit = manifest.splits[split]!.newSamples
                let oldRecords = Dictionary(manifest.splits[split]!.shards.map { ($0.basename, $0) }, uniquingKeysWith: { a, _ in a })
                for entry in index.shards {
                    let id = ShardID(split: split, basename: entry.storedFile.basename)
                    let oldRecord = oldRecords[entry.storedFile.basename]
                    guard let replacement = rewritten[id] else {
                        entries.append(entry)
                        if let oldRecord { records.append(oldRecord) }
                        continue
                    }
                    let createdBy = oldRecord?.createdBy ?? version
                    let removed = entry.samples - replacement.reduce(0) { $0 + $1.samples }
                    removedHere += removed
                    rewrittenHere += 1
                    if createdBy == version { newInSplit -= removed }
                    for new in replacement {
                        links.append(.init(version: version, path: "\(split)/\(new.storedFile.basename)"))
                        entries.append(new)
                        records.append(.init(basename: new.storedFile.basename, samples: new.samples, bytes: new.storedFile.bytes,
                                             rawBytes: new.rawData.bytes, sha256: new.storedFile.hashes["sha256"] ?? "", createdBy: createdBy))
                    }
                    obsolete.append("\(split)/\(entry.storedFile.basename)")
                }
                writes.append(.init(version: version, path: "\(split)/\(MDSIndex.basename)", bytes: Data(MDSIndex(shards: entries, version: 2).jsonBytes())))
                manifest.splits[split]!.shards = records
                manifest.splits[split]!.samples = records.reduce(0) { $0 + $1.samples }
                manifest.splits[split]!.newSamples = max(0, newInSplit)
            }
            if let (path, kept, dropped) = try filterQuarantine(store: store, version: version, present: present, manifest: manifest,
                                                                forgotten: forgotten) {
                writes.append(.init(version: version, path: path, bytes: Data(kept)))
                for (reason, count) in dropped {
                    manifest.quarantine.count -= count
                    manifest.quarantine.byReason[reason, default: count] -= count
                    if manifest.quarantine.byReason[reason] == 0 { manifest.quarantine.byReason[reason] = nil }
                }
                manifest.counts.quarantined = manifest.quarantine.count
            }
            if let (path, kept) = try filterRows(store: store, version: version, present: present, manifest: manifest,
                                                 forgotten: forgotten, work: work) {
                writes.append(.init(version: version, path: path, bytes: Data(kept)))
            }
            if let write = try keyIndexWrite(store: store, version: version, present: present, manifest: manifest,
                                             forgotten: forgotten, renamed: renamed, work: work) {
                writes.append(write)
            }
            guard !writes.isEmpty else { continue }
            manifest.counts.samples = manifest.splits.values.reduce(0) { $0 + $1.samples }
            manifest.counts.newSamples = manifest.splits.values.reduce(0) { $0 + $1.newSamples }
            manifest.redactions.append(.init(at: at, keys: removedHere, reason: reason, method: selector.method,
                                             keysDigest: tombstones.digest(of: forgotten), shardsRewritten: rewrittenHere))
            // The manifest last: it is what says the version is complete.
            // The card is rendered from the manifest, so it says what the version now holds (and its redaction).
            if present.contains(DatasetCard.fileName) {
                writes.append(.init(version: version, path: DatasetCard.fileName,
                                    bytes: Data(DatasetCard.render(manifest, remote: store.cardRemote(of: version)).utf8)))
            }
            writes.append(.init(version: version, path: DatasetManifest.fileName, bytes: try manifest.encoded()))
            let listed = Set(manifest.splits.flatMap { split, info in info.shards.map { "\(split)/\($0.basename)" } })
            journal.installs += links
            journal.writes += writes
            journal.removals += obsolete.filter { !listed.contains($0) }.map { .init(version: version, path: $0) }
            results.append(VersionResult(version: version, samplesRemoved: removedHere, shardsRewritten: rewrittenHere))
        }
        if !journal.writes.isEmpty {
            try journal.save(to: store)
            journaled = true
            try journal.apply(to: store)
        }
        return Report(dataset: store.dataset, keysFound: found.count, tombstonesAdded: added, versions: results, resumed: resumed)
    }

    private static func keyText(_ sample: [String: MDSValue], path: String, index: Int) -> String? {
        if case .string(let key)? = sample[SampleKey.column] { return key }
        return nil
    }

    private static func isSelected(_ sample: [String: MDSValue], key: String, _ selector: Selector) -> Bool {
        switch selector {
        case .keys(let keys): keys.contains(key)
        case .group(let column, let value): sample[column].flatMap(text) == value
        }
    }

    /// Writes the shard again without the samples whose key is in `keys`, with the original's options. Returns the
    /// new shard's entry (none when no sample is left).
    static func rewrite(_ entry: MDSShardEntry, path: String, dropping keys: Set<String>, into directory: String) throws -> [MDSShardEntry] {
        var options = MDSWriterOptions(sizeLimit: entry.sizeLimit ?? MDSWriterOptions.defaultSizeLimit,
                                       zstdLevel: try zstdLevel(entry.compression, path: path),
                                       hashes: Array(Set(entry.hashes.compactMap(MDSHashAlgorithm.init(rawValue:)) + [.sha256])))
        options.naming = .contentAddressed
        let writer = try MDSWriter(directory: URL(fileURLWithPath: directory, isDirectory: true), columns: try entry.columns(), options: options)
        try MDSShardStream.read(entry, path: path) { _, sample in
            if case .string(let key)? = sample[SampleKey.column], keys.contains(key) { return }
            try writer.write(sample)
        }
        return try writer.finish()
    }

    static func zstdLevel(_ compression: String?, path: String) throws(DatasetError) -> Int? {
        guard let compression else { return nil }
        if compression == "zstd" { return 3 }
        guard compression.hasPrefix("zstd:"), let level = Int(compression.dropFirst(5)) else {
            throw DatasetError(.corrupt, path: path, "cannot rewrite \(path): compression '\(compression)' is not zstd")
        }
        return level
    }

    /// The version's rows.bin (the (cursor, key) list exactly-once re-reads consult) without forgotten keys, so no
    /// byte of the version names them (the tombstones keep a re-read from publishing them again): its path in the
    /// version and the kept bytes; nil when it names none of them. The filtered copy is built in `work`.
    static func filterRows(store: any DatasetStore, version: String, present: Set<String>, manifest: DatasetManifest,
                           forgotten: Set<String>, work: String) throws -> (String, [UInt8])? {
        guard let name = manifest.rowsFile, present.contains(name) else { return nil }
        return try store.withLocalFile(name, of: version) { (path) throws(DatasetError) -> (String, [UInt8])? in
            do throws(SystemError) {
                var dropped = 0
                try PublishedRowsFile.forEach(path) { row in if let key = row.key, forgotten.contains(key) { dropped += 1 } }
                guard dropped > 0 else { return nil }
                let temporary = "\(work)/\(version).\(name).forget-\(getpid())"
                FileSystem.removeIfPresent(temporary)
                defer { FileSystem.removeIfPresent(temporary) }
                let writer = try PublishedRowsFile.Writer(path: temporary)
                var failure: SystemError?
                try PublishedRowsFile.forEach(path) { row in
                    guard failure == nil, !(row.key.map(forgotten.contains) ?? false) else { return }
                    do throws(SystemError) { try writer.append(row) } catch { failure = error }
                }
                if let failure { throw failure }
                try writer.close()
                return (name, try FileSystem.readAll(temporary, role: name) ?? [])
            } catch { throw DatasetError(error) }
        }
    }

    /// The version's quarantine.jsonl (which records keys of rejected rows) without the rows of forgotten keys:
    /// its path in the version, the kept bytes and how many rows were dropped by reason code; nil when nothing is
    /// dropped.
    static func filterQuarantine(store: any DatasetStore, version: String, present: Set<String>, manifest: DatasetManifest,
                                 forgotten: Set<String>) throws(DatasetError) -> (String, [UInt8], [String: Int])? {
        guard let name = manifest.quarantine.file, present.contains(name) else { return nil }
        let bytes = try store.read(name, of: version)
        var kept: [UInt8] = []
        var dropped: [String: Int] = [:]
        for line in bytes.split(separator: 0x0a, omittingEmptySubsequences: true) {
            let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
            if let key = object?["key"] as? String, forgotten.contains(key) {
                dropped[object?["reason"] as? String ?? "unknown", default: 0] += 1
                continue
            }
            kept += line + [0x0a]
        }
        return dropped.isEmpty ? nil : (name, kept, dropped)
    }
}

/// Everything one forget changes, saved as the dataset file `.forget-journal.json` (atomically) before the first
/// version is touched, and applied step by step through the store: the rewritten shards added to the versions that
/// list them, then the small files (per version its index.json files, quarantine.jsonl, rows.bin, keys.idx, README.md,
/// manifest.json last), then the removal of the old shards. Every step can be repeated, so a forget that dies
/// half-way is finished by the next `etl forget` (which applies the journal before anything else), and no version
/// stays with an index.json and a manifest.json that disagree. The rewritten shards wait in the store's scratch
/// directory `work` until then.
struct ForgetJournal: Codable {
    struct FileRef: Codable {
        var version: String
        /// Relative to the version (and, for an added shard, to the scratch directory too).
        var path: String
    }
    struct FileWrite: Codable {
        var version: String
        var path: String
        var bytes: Data
    }

    static let fileName = ".forget-journal.json"

    /// The name of the scratch directory holding the rewritten shards until every version has them.
    var work: String
    var installs: [FileRef] = []
    var writes: [FileWrite] = []
    var removals: [FileRef] = []

    init(work: String) { self.work = work }

    func save(to store: any DatasetStore) throws(DatasetError) {
        let data: Data
        do { data = try JSONEncoder().encode(self) } catch {
            throw DatasetError(.writeFailed, path: store.datasetFileLocation(Self.fileName), "cannot encode the forget journal: \(error)")
        }
        try store.writeDatasetFile(Self.fileName, Array(data))
    }

    /// Applies a journal left by an interrupted forget; returns whether there was one.
    static func finishInterrupted(store: any DatasetStore) throws(DatasetError) -> Bool {
        guard let bytes = try store.readDatasetFile(fileName) else { return false }
        let journal: ForgetJournal
        do { journal = try JSONDecoder().decode(ForgetJournal.self, from: Data(bytes)) } catch {
            throw DatasetError(.corrupt, path: store.datasetFileLocation(fileName),
                               "the journal of an interrupted forget cannot be read (\(error)); the versions it names may need etl verify")
        }
        try journal.apply(to: store)
        return true
    }

    func apply(to store: any DatasetStore) throws(DatasetError) {
        var step = 0
        // Tests stop the process here to prove an interrupted forget is finished later; production never sets it.
        let crashAfter = ProcessInfo.processInfo.environment["ETL_TEST_FORGET_CRASH_AFTER"].flatMap { Int($0) }
        func checkpoint() {
            step += 1
            if step == crashAfter { exit(99) }
        }
        let directory = try store.scratchDirectory(work)
        for install in installs {
            let source = "\(directory)/\(install.path)"
            if !FileSystem.exists(source), !(try store.files(of: install.version)).contains(where: { $0.path == install.path }) {
                throw DatasetError(.corrupt, path: source, """
                    the interrupted forget's rewritten shard \(install.path) is no longer in its scratch directory \(directory), and \
                    \(store.dataset)@\(install.version) does not have it yet, so the journal \(store.datasetFileLocation(Self.fileName)) \
                    cannot be finished here: finish it where it started, or remove that journal and check the versions with etl verify --all
                    """)
            }
            try store.add(localFile: source, as: install.path, to: install.version)
        }
        checkpoint()
        for write in writes {
            try store.replace(write.path, of: write.version, with: Array(write.bytes))
            checkpoint()
        }
        for removal in removals { try store.removeFile(removal.path, of: removal.version) }
        try store.removeDatasetFile(Self.fileName)
        store.removeScratch(prefix: work)
    }
}
