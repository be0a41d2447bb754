import Foundation

/// A file of a shard as index.json describes it (`raw_data` / `zip_data`).
public struct MDSFileInfo: Codable, Sendable, Equatable {
    public var basename: String
    public var bytes: Int
    /// Lowercase hex digests keyed by algorithm name (`sha256`, `xxh64`, or any other hashlib/xxhash name
    /// another writer used).
    public var hashes: [String: String]

    public init(basename: String, bytes: Int, hashes: [String: String]) {
        self.basename = basename
        self.bytes = bytes
        self.hashes = hashes
    }

    var pythonJSON: PythonJSON {
        .object([
            "basename": .string(basename), "bytes": .int(bytes),
            "hashes": .object(hashes.mapValues { .string($0) }),
        ])
    }
}

/// One shard entry of a mosaicml v2 index.json, every field as mosaicml writes it.
public struct MDSShardEntry: Codable, Sendable, Equatable {
    public var columnEncodings: [String]
    public var columnNames: [String]
    public var columnSizes: [Int?]
    /// `zstd:<level>`, or nil when the shard is stored uncompressed.
    public var compression: String?
    /// Always `mds` for shards this module reads or writes.
    public var format: String
    /// Algorithm names, sorted (mosaicml requires it).
    public var hashes: [String]
    /// The uncompressed shard. With compression this file does not exist on disk; its size and hashes describe
    /// the decompressed bytes.
    public var rawData: MDSFileInfo
    public var samples: Int
    public var sizeLimit: Int?
    /// Always 2.
    public var version: Int
    /// The compressed shard, the only file on disk when `compression` is set.
    public var zipData: MDSFileInfo?

    public init(
        columnEncodings: [String], columnNames: [String], columnSizes: [Int?], compression: String?,
        format: String = "mds", hashes: [String], rawData: MDSFileInfo, samples: Int, sizeLimit: Int?,
        version: Int = 2, zipData: MDSFileInfo?
    ) {
        self.columnEncodings = columnEncodings
        self.columnNames = columnNames
        self.columnSizes = columnSizes
        self.compression = compression
        self.format = format
        self.hashes = hashes
        self.rawData = rawData
        self.samples = samples
        self.sizeLimit = sizeLimit
        self.version = version
        self.zipData = zipData
    }

    /// The file that exists in the dataset directory: `zip_data` when compressed, else `raw_data`.
    public var storedFile: MDSFileInfo { zipData ?? rawData }

    /// The columns in stored order, with parsed encodings.
    public func columns() throws(ShardError) -> [MDSColumn] {
        guard columnNames.count == columnEncodings.count, columnNames.count == columnSizes.count else {
            throw ShardError(
                .invalidIndex,
                "index entry for \(storedFile.basename) lists \(columnNames.count) column names, "
                    + "\(columnEncodings.count) encodings and \(columnSizes.count) sizes")
        }
        var columns: [MDSColumn] = []
        for (index, name) in columnNames.enumerated() {
            let encoding: MDSEncoding
            do throws(ShardError) {
                encoding = try MDSEncoding(parsing: columnEncodings[index])
            } catch {
                throw ShardError(
                    .invalidEncoding, column: name, "column '\(name)' of \(storedFile.basename): \(error.message)")
            }
            guard encoding.fixedSize == columnSizes[index] else {
                throw ShardError(
                    .invalidIndex, column: name,
                    "index entry for \(storedFile.basename) gives column '\(name)' (\(encoding.name)) size "
                        + "\(columnSizes[index].map(String.init) ?? "null"), but that encoding's size is "
                        + "\(encoding.fixedSize.map(String.init) ?? "null")")
            }
            columns.append(MDSColumn(name: name, encoding: encoding))
        }
        return columns
    }

    enum CodingKeys: String, CodingKey {
        case columnEncodings = "column_encodings"
        case columnNames = "column_names"
        case columnSizes = "column_sizes"
        case compression, format, hashes
        case rawData = "raw_data"
        case samples
        case sizeLimit = "size_limit"
        case version
        case zipData = "zip_data"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        columnEncodings = try container.decode([String].self, forKey: .columnEncodings)
        columnNames = try container.decode([String].self, forKey: .columnNames)
        columnSizes = try container.decode([Int?].self, forKey: .columnSizes)
        compression = try container.decodeIfPresent(String.self, forKey: .compression)
        format = try container.decode(String.self, forKey: .format)
        hashes = try container.decodeIfPresent([String].self, forKey: .hashes) ?? []
        rawData = try container.decode(MDSFileInfo.self, forKey: .rawData)
        samples = try container.decode(Int.self, forKey: .samples)
        sizeLimit = try container.decodeIfPresent(Int.self, forKey: .sizeLimit)
        version = try container.decode(Int.self, forKey: .version)
        zipData = try container.decodeIfPresent(MDSFileInfo.self, forKey: .zipData)
    }

    /// Writes nulls explicitly (synthesized Codable would drop nil keys, and mosaicml writes them).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(columnEncodings, forKey: .columnEncodings)
        try container.encode(columnNames, forKey: .columnNames)
        try container.encode(columnSizes, forKey: .columnSizes)
        try container.encode(compression, forKey: .compression)
        try container.encode(format, forKey: .format)
        try container.encode(hashes, forKey: .hashes)
        try container.encode(rawData, forKey: .rawData)
        try container.encode(samples, forKey: .samples)
        try container.encode(sizeLimit, forKey: .sizeLimit)
        try container.encode(version, forKey: .version)
        try container.encode(zipData, forKey: .zipData)
    }

    var pythonJSON: PythonJSON {
        .object([
            "column_encodings": .array(columnEncodings.map { .string($0) }),
            "column_names": .array(columnNames.map { .string($0) }),
            "column_sizes": .array(columnSizes.map { $0.map { .int($0) } ?? .null }),
            "compression": compression.map { .string($0) } ?? .null,
            "format": .string(format),
            "hashes": .array(hashes.map { .string($0) }),
            "raw_data": rawData.pythonJSON,
            "samples": .int(samples),
            "size_limit": sizeLimit.map { .int($0) } ?? .null,
            "version": .int(version),
            "zip_data": zipData?.pythonJSON ?? .null,
        ])
    }
}

/// A mosaicml v2 `index.json`: the list of shards of one split.
public struct MDSIndex: Codable, Sendable, Equatable {
    public var shards: [MDSShardEntry]
    public var version: Int

    public static let basename = "index.json"

    public init(shards: [MDSShardEntry], version: Int = 2) {
        self.shards = shards
        self.version = version
    }

    public var sampleCount: Int { shards.reduce(0) { $0 + $1.samples } }

    public static func read(from directory: URL) throws(ShardError) -> MDSIndex {
        let path = directory.appendingPathComponent(basename).path
        let bytes = try MDSFile.readAll(path, role: "index")
        let index: MDSIndex
        do {
            index = try JSONDecoder().decode(MDSIndex.self, from: Data(bytes))
        } catch {
            throw ShardError(.invalidIndex, path: path, "index \(path) is not a valid MDS index: \(Self.describe(error))")
        }
        guard index.version == 2 else {
            throw ShardError(.invalidIndex, path: path, "index \(path) has version \(index.version); only version 2 is supported")
        }
        for shard in index.shards {
            guard shard.format == "mds" else {
                throw ShardError(
                    .invalidIndex, path: path,
                    "index \(path) lists \(shard.storedFile.basename) in format '\(shard.format)'; only 'mds' is supported")
            }
            guard shard.version == 2 else {
                throw ShardError(
                    .invalidIndex, path: path,
                    "index \(path) lists \(shard.storedFile.basename) with version \(shard.version); only 2 is supported")
            }
        }
        return index
    }

    /// The exact bytes mosaicml's `json.dump(obj, out, sort_keys=True)` produces (no trailing newline).
    public func jsonBytes() -> [UInt8] {
        PythonJSON.object(["shards": .array(shards.map(\.pythonJSON)), "version": .int(version)]).bytes
    }

    /// Writes `index.json` atomically: a temporary file in the same directory, fsync, rename, fsync the directory.
    public func write(to directory: URL) throws(ShardError) {
        let directoryPath = directory.path
        let finalPath = directory.appendingPathComponent(Self.basename).path
        let temporaryPath = directory.appendingPathComponent(MDSWriter.temporaryName(for: Self.basename)).path
        var file = try MDSFile.createExclusive(temporaryPath, role: "index")
        do throws(ShardError) {
            try jsonBytes().withBytes { (bytes) throws(ShardError) in try file.write(bytes) }
            try file.sync()
            try file.close()
            try MDSFile.rename(temporaryPath, to: finalPath, role: "index")
        } catch {
            MDSFile.removeIfPresent(temporaryPath)
            throw error
        }
        try MDSFile.syncDirectory(directoryPath)
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            "missing key '\(key.stringValue)' at \(codingPath(context))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "\(context.debugDescription) at \(codingPath(context))"
        case DecodingError.dataCorrupted(let context):
            "\(context.debugDescription)\(context.codingPath.isEmpty ? "" : " at \(codingPath(context))")"
        default:
            "\(error)"
        }
    }

    private static func codingPath(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return path.isEmpty ? "top level" : path
    }
}
