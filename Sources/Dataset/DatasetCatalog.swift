import Foundation

/// Every dataset under an output root with a line per version: what `etl datasets` prints.
public struct DatasetCatalog: Sendable, Codable, Equatable {
    public struct VersionSummary: Sendable, Codable, Equatable {
        public var version: String
        public var createdAt: String
        public var parent: String?
        public var samples: Int
        /// Samples per split.
        public var splits: [String: Int]
        /// Bytes of the shard files this version lists (shared ones included: the version's size on its own).
        public var bytes: Int
        public var pinned: Bool
        public var redactions: Int
        enum CodingKeys: String, CodingKey { case version, createdAt = "created_at", parent, samples, splits, bytes, pinned, redactions }
    }

    public struct Entry: Sendable, Codable, Equatable {
        public var dataset: String
        public var versions: [VersionSummary]
        /// Versions whose manifest could not be read, with why (shown, never hidden).
        public var unreadable: [String: String]
    }

    public var root: String
    public var datasets: [Entry]

    public static func summary(_ manifest: DatasetManifest, pinned: Bool) -> VersionSummary {
        VersionSummary(version: manifest.version, createdAt: manifest.createdAt, parent: manifest.parent, samples: manifest.counts.samples,
                       splits: manifest.splits.mapValues(\.samples),
                       bytes: manifest.splits.values.reduce(0) { $0 + $1.shards.reduce(0) { $0 + $1.bytes } },
                       pinned: pinned, redactions: manifest.redactions.count)
    }

    /// Reads the catalog of an output root; datasets without a version are left out.
    public static func load(root: String) throws(DatasetError) -> DatasetCatalog {
        try load(DatasetStores.openRoot(root))
    }

    public static func load(_ root: any DatasetRoot) throws(DatasetError) -> DatasetCatalog {
        var entries: [Entry] = []
        for name in try root.datasetNames() {
            let store = root.store(name)
            guard let versions = try? store.versions(), !versions.isEmpty else { continue }
            let pins = (try? PinList.load(from: store)) ?? PinList()
            var entry = Entry(dataset: name, versions: [], unreadable: [:])
            for version in versions {
                do { entry.versions.append(summary(try store.manifest(of: version), pinned: pins.contains(version))) } catch {
                    entry.unreadable[version] = error.message
                }
            }
            entries.append(entry)
        }
        return DatasetCatalog(root: root.location, datasets: entries)
    }
}
