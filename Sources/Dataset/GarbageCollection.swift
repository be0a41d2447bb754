import Foundation

/// Which versions `etl gc` removes and what that frees. The decision is pure (`plan`); `apply` does the I/O.
///
/// Never removed: the newest version (the next run's parent and the cursor's home) and a pinned one. On a store whose
/// versions share files (local: hard links), freed are the shard files no kept version lists (`<split>/<basename>`:
/// names are content-addressed, so the same name in two versions is the same file), since a shared shard lives on
/// through its other links; on a store where each version holds its own copies, every shard of a removed version.
/// Either way `DatasetStore.deleteVersion` never takes a file from a kept version.
public enum GarbageCollection {
    public enum Rule: Sendable, Equatable {
        /// Keep the newest N versions (N ≥ 1).
        case keepNewest(Int)
        /// Remove versions created before this instant.
        case olderThan(Date)
    }

    public struct Candidate: Sendable, Equatable {
        public var version: String
        public var createdAt: Date?
        /// `<split>/<basename>` → bytes, for every shard the version lists.
        public var shards: [String: Int]
        public init(version: String, createdAt: Date?, shards: [String: Int]) {
            self.version = version
            self.createdAt = createdAt
            self.shards = shards
        }

        public init(_ manifest: DatasetManifest) {
            var shards: [String: Int] = [:]
            for (split, info) in manifest.splits { for shard in info.shards { shards["\(split)/\(shard.basename)"] = shard.bytes } }
            self.init(version: manifest.version, createdAt: GarbageCollection.date(manifest.createdAt), shards: shards)
        }
    }

    public struct Plan: Sendable, Equatable, Codable {
        public var remove: [String] = []
        /// Versions the rule selected that are kept anyway, with why (newest, pinned).
        public var spared: [String: String] = [:]
        public var keep: [String] = []
        /// `<split>/<basename>` of the shard files freed, sorted.
        public var freedShards: [String] = []
        public var freedBytes = 0
        enum CodingKeys: String, CodingKey { case remove, spared, keep, freedShards = "freed_shards", freedBytes = "freed_bytes" }
    }

    /// `versions` oldest first. `sharedFiles` is the store's `sharesFilesBetweenVersions`: when versions share
    /// stored files (local hard links), a removed version frees only the shards no kept version lists; when each
    /// version holds its own copy (object store), it frees all of its shards, listed as `<version>/<split>/<basename>`.
    public static func plan(_ versions: [Candidate], pins: PinList, rule: Rule, sharedFiles: Bool = true) -> Plan {
        var plan = Plan()
        let newest = versions.last?.version
        for (position, candidate) in versions.enumerated() {
            let selected: Bool = switch rule {
            case .keepNewest(let count): position < versions.count - max(count, 1)
            case .olderThan(let cutoff): candidate.createdAt.map { $0 < cutoff } ?? false
            }
            if !selected {
                plan.keep.append(candidate.version)
            } else if candidate.version == newest {
                plan.spared[candidate.version] = "newest version"
                plan.keep.append(candidate.version)
            } else if pins.contains(candidate.version) {
                plan.spared[candidate.version] = "pinned"
                plan.keep.append(candidate.version)
            } else {
                plan.remove.append(candidate.version)
            }
        }
        let removed = Set(plan.remove)
        let keptShards = Set(versions.filter { !removed.contains($0.version) }.flatMap(\.shards.keys))
        var freed: [String: Int] = [:]
        for candidate in versions where removed.contains(candidate.version) {
            for (path, bytes) in candidate.shards {
                if !sharedFiles {
                    freed["\(candidate.version)/\(path)"] = bytes
                } else if !keptShards.contains(path) {
                    freed[path] = bytes
                }
            }
        }
        plan.freedShards = freed.keys.sorted()
        plan.freedBytes = freed.values.reduce(0, +)
        return plan
    }

    /// `30d`, `12h`, `2w`, `45m`, `90s` as seconds.
    public static func parseAge(_ text: String) -> TimeInterval? {
        guard let unit = text.last, let number = Double(text.dropLast()), number >= 0 else { return nil }
        switch unit {
        case "s": return number
        case "m": return number * 60
        case "h": return number * 3600
        case "d": return number * 86400
        case "w": return number * 7 * 86400
        default: return nil
        }
    }

    public static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    /// Removes the planned versions (call with the dataset lock held), each in one step that hides it from readers
    /// before its files go (`DatasetStore.deleteVersion`), then repairs LATEST.
    public static func apply(_ plan: Plan, in store: any DatasetStore) throws(DatasetError) {
        for version in plan.remove { try store.deleteVersion(version) }
        _ = store.repairPointers()
    }
}
