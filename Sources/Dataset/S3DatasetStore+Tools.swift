import Foundation
import ObjectStorage
import SystemIO

/// What the dataset tools (verify, diff, head, report, forget, gc, pins, tombstones) need, on S3. Each version holds
/// its own copy of every file it lists (`share` is a server-side copy), so removing a file or a version never takes
/// bytes from another version.
extension S3DatasetStore {
    public var sharesFilesBetweenVersions: Bool { false }

    public func files(of version: String) throws(DatasetError) -> [VersionFile] {
        try requirePublished(version)
        let prefix = key("\(version)/")
        let objects = try s3 { () throws(ObjectStorageError) in try client.list(bucket: bucket, prefix: prefix).objects }
        return objects.map { VersionFile(path: String($0.key.dropFirst(prefix.count)), bytes: $0.size) }.sorted { $0.path < $1.path }
    }

    public func withLocalFile<Result>(_ path: String, of version: String, _ body: (String) throws -> Result) throws -> Result {
        let directory = try scratchDirectory("download-\(UUID().uuidString.prefix(12).lowercased())")
        defer { try? FileSystem.removeTree(directory) }
        let local = "\(directory)/\((path as NSString).lastPathComponent)"
        do {
            try client.download(bucket: bucket, key: key("\(version)/\(path)"), to: local)
        } catch where error.code == .notFound {
            try requirePublished(version)
            // Callers ask for files the version lists: one missing from a published version means it is damaged.
            throw DatasetError(.corrupt, path: fileLocation(path, of: version), "\(dataset)@\(version) has no \(path), which it lists; run `etl verify` on it")
        } catch {
            throw DatasetError(error)
        }
        return try body(local)
    }

    public func replace(_ path: String, of version: String, with bytes: [UInt8]) throws(DatasetError) {
        // One PUT replaces an object atomically: a reader gets the old bytes or the new ones.
        try s3 { () throws(ObjectStorageError) in try client.put(bytes, bucket: bucket, key: key("\(version)/\(path)")) }
    }

    public func add(localFile: String, as path: String, to version: String) throws(DatasetError) {
        let target = key("\(version)/\(path)")
        if try s3({ () throws(ObjectStorageError) in try client.head(bucket: bucket, key: target) }) != nil { return }
        try s3 { () throws(ObjectStorageError) in _ = try client.upload(file: localFile, bucket: bucket, key: target) }
    }

    public func removeFile(_ path: String, of version: String) throws(DatasetError) {
        try s3 { () throws(ObjectStorageError) in try client.delete(bucket: bucket, key: key("\(version)/\(path)")) }
    }

    /// The commit record goes first, so the version leaves `versions()` in one step; then its objects. Objects left by
    /// a crash half-way are under a `vN/` no commit record names: `removeAbandonedStaging` removes them.
    public func deleteVersion(_ version: String) throws(DatasetError) {
        try s3 { () throws(ObjectStorageError) in try client.delete(bucket: bucket, key: key("\(Self.commitsFolder)/\(version).json")) }
        try removeObjects(under: "\(version)/")
    }

    public func readDatasetFile(_ name: String) throws(DatasetError) -> [UInt8]? {
        do { return try client.get(bucket: bucket, key: key(name)) } catch where error.code == .notFound {
            return nil
        } catch {
            throw DatasetError(error)
        }
    }

    public func writeDatasetFile(_ name: String, _ bytes: [UInt8]) throws(DatasetError) {
        try s3 { () throws(ObjectStorageError) in try client.put(bytes, bucket: bucket, key: key(name)) }
    }

    public func removeDatasetFile(_ name: String) throws(DatasetError) {
        try s3 { () throws(ObjectStorageError) in try client.delete(bucket: bucket, key: key(name)) }
    }

    public func datasetFileLocation(_ name: String) -> String { "\(location)/\(name)" }

    /// Outside the bucket, on this machine: an interrupted operation's journal that names files here can only be
    /// finished on this machine (elsewhere it finds them missing and starts the operation over).
    public func scratchDirectory(_ name: String) throws(DatasetError) -> String {
        let path = "\(Self.localRoot(for: self, kind: "scratch"))/\(name)"
        do { try FileSystem.createDirectory(path) } catch { throw DatasetError(error) }
        return path
    }

    public func removeScratch(prefix: String) {
        let root = Self.localRoot(for: self, kind: "scratch")
        for name in ((try? FileSystem.contentsOfDirectory(root)) ?? []) ?? [] where name.hasPrefix(prefix) {
            try? FileSystem.removeTree("\(root)/\(name)")
        }
    }

    func requirePublished(_ version: String) throws(DatasetError) {
        let record = try s3 { () throws(ObjectStorageError) in try client.head(bucket: bucket, key: key("\(Self.commitsFolder)/\(version).json")) }
        guard record != nil else {
            throw DatasetError(.notFound, path: "\(location)/\(version)", "dataset '\(dataset)' has no version '\(version)'")
        }
    }

    func removeObjects(under path: String) throws(DatasetError) {
        let objects = try s3 { () throws(ObjectStorageError) in try client.list(bucket: bucket, prefix: key(path)).objects }
        try s3 { () throws(ObjectStorageError) in try client.delete(bucket: bucket, keys: objects.map(\.key)) }
    }
}

/// An `s3://bucket/prefix` holding datasets: each common prefix below it that is a dataset name.
public struct S3DatasetRoot: DatasetRoot {
    public let root: S3Location
    public let client: S3Client

    public init(root: S3Location, client: S3Client) {
        self.root = root
        self.client = client
    }

    public var location: String { root.description }

    public func datasetNames() throws(DatasetError) -> [String] {
        let prefix = root.prefix.isEmpty ? "" : "\(root.prefix)/"
        let listed: [String]
        do { listed = try client.list(bucket: root.bucket, prefix: prefix, delimiter: "/").commonPrefixes } catch { throw DatasetError(error) }
        return listed.map { String($0.dropFirst(prefix.count).dropLast()) }.filter { !$0.isEmpty && !$0.hasPrefix(".") && !$0.hasPrefix("_") }.sorted()
    }

    public func store(_ dataset: String) -> any DatasetStore { S3DatasetStore(root: root, dataset: dataset, client: client) }
}
