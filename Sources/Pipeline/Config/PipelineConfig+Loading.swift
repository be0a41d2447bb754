import Crypto
import Dataset
import Foundation
import Media
import MDS
import ObjectStorage
import Yams

extension PipelineConfig {
    /// Reads and checks a pipeline file. Throws `PipelineConfigError` listing every problem with file:line:column.
    public static func load(
        path: String,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        workingDirectory: String = FileManager.default.currentDirectoryPath
    ) throws(PipelineConfigError) -> PipelineConfig {
        let start = SourceLocation(file: path, line: 1, column: 1)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PipelineConfigError(issues: [ConfigIssue(location: start, message: "cannot read the pipeline file (does it exist?)")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PipelineConfigError(issues: [ConfigIssue(location: start, message: "the pipeline file is not UTF-8 text")])
        }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw PipelineConfigError(issues: [ConfigIssue(location: start, message: "the pipeline file is empty")])
            }
            root = node
        } catch let error as PipelineConfigError {
            throw error
        } catch let error as YamlError {
            throw PipelineConfigError(issues: [ConfigIssue(location: yamlErrorLocation(error, file: path), message: "invalid YAML: \(yamlProblem(error))")])
        } catch {
            throw PipelineConfigError(issues: [ConfigIssue(location: start, message: "invalid YAML: \(error)")])
        }
        var issues = ConfigIssues()
        let digest = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        let config = decode(ConfigNode(node: root, path: "", file: path), sha256: digest, environment: environment,
                            workingDirectory: workingDirectory, issues: &issues)
        guard issues.isEmpty, let config else { throw PipelineConfigError(issues: issues.all) }
        return config
    }

    private static func decode(_ root: ConfigNode, sha256: String, environment: [String: String], workingDirectory: String,
                               issues: inout ConfigIssues) -> PipelineConfig? {
        guard var top = MappingReader(root, issues: &issues) else { return nil }
        let name = top.string("name", required: true, issues: &issues)
        if let (text, location) = name { checkIdentifier(text, what: "name", at: location, issues: &issues) }
        let dataset = top.string("dataset", issues: &issues)
        if let (text, location) = dataset { checkIdentifier(text, what: "dataset", at: location, issues: &issues) }
        var outputRoot = "datasets"
        var outputRootLocation = SourceLocation(file: root.file, line: 1, column: 1)
        if let (text, location) = top.string("output_root", issues: &issues) {
            outputRoot = expand(text, environment: environment, at: location, issues: &issues)
            outputRootLocation = location
            if outputRoot.isEmpty { issues.add("output_root is empty", at: location) }
        }
        if let scheme = DatasetStores.urlScheme(outputRoot) {
            // Not a directory named `s3:` under the working directory: say what can be written to.
            if scheme != "s3" {
                issues.add("output_root '\(outputRoot)' is a \(scheme):// URL; etl writes datasets to a local directory or to s3://bucket/prefix", at: outputRootLocation)
            } else if S3Location(url: outputRoot) == nil {
                issues.add("output_root '\(outputRoot)' is not s3://<bucket>[/<prefix>] with a valid bucket name (3-63 lowercase letters, digits, '-' and '.')", at: outputRootLocation)
            }
        } else if !outputRoot.hasPrefix("/") {
            outputRoot = (workingDirectory as NSString).appendingPathComponent(outputRoot)
        }

        let source = top.required("source", issues: &issues).flatMap { decodeSource($0, environment: environment, issues: &issues) }
        let columns = top.required("columns", issues: &issues).map { decodeColumns($0, issues: &issues) } ?? []
        let split = top.node("split").map { decodeSplit($0, issues: &issues) } ?? SplitConfig.default
        let shards = top.node("shards").map { decodeShards($0, issues: &issues) } ?? ShardConfig.default
        let media = top.node("media").map { decodeMedia($0, issues: &issues) } ?? MediaConfig.default
        let storage = top.node("storage").map { decodeStorage($0, environment: environment, issues: &issues) } ?? S3StorageOptions()
        if top.has("storage"), DatasetStores.urlScheme(outputRoot) != "s3" {
            issues.add("storage: applies to an s3:// output_root only; output_root is '\(outputRoot)'", at: outputRootLocation)
        }
        let expect = top.node("expect").map { Expectations.decode($0, columns: columns, issues: &issues) } ?? Expectations()
        let ledger = top.node("ledger").flatMap { decodeLedger($0, environment: environment, issues: &issues) }
        let dedupe = top.node("dedupe").flatMap { DedupeConfig.decode($0, columns: columns, issues: &issues) }
        top.reportUnknownKeys(issues: &issues)

        if let source, let split, let groupColumn = split.groupColumn, groupColumn.isEmpty {
            issues.add("split.group_column is empty", at: split.groupLocation ?? source.queryLocation)
        }
        guard let name, let source, let split, let shards, let media else { return nil }
        return PipelineConfig(name: name.0, dataset: dataset?.0 ?? name.0, outputRoot: outputRoot,
                              outputRootLocation: outputRootLocation, source: source,
                              columns: columns, split: split, shards: shards, media: media,
                              storage: storage, expect: expect, ledger: ledger, dedupe: dedupe, path: root.file, sha256: sha256)
    }

    private static func decodeSource(_ node: ConfigNode, environment: [String: String], issues: inout ConfigIssues) -> SourceConfig? {
        guard var reader = MappingReader(node, issues: &issues) else { return nil }
        var connection = ""
        var connectionLocation: SourceLocation?
        if let (text, location) = reader.string("connection", issues: &issues) {
            connection = expand(text, environment: environment, at: location, issues: &issues)
            connectionLocation = location
        }
        let query = reader.string("query", required: true, issues: &issues)
        let change = reader.string("change_column", issues: &issues)
        var cursor = reader.string("cursor_column", required: change == nil, issues: &issues)
        if let (changeName, changeLocation) = change {
            if let (cursorName, cursorLocation) = cursor, cursorName != changeName {
                issues.add("cursor_column '\(cursorName)' differs from change_column '\(changeName)': rows are read by the column that moves when they change, so leave cursor_column out", at: cursorLocation)
            }
            cursor = cursor ?? (changeName, changeLocation)
        }
        let key = reader.string("key_column", required: true, issues: &issues)
        var retry = RetryPolicy.default
        if let node = reader.node("retry"), var retryReader = MappingReader(node, issues: &issues) {
            if let attempts = retryReader.int("attempts", range: 0...100, issues: &issues) { retry.attempts = attempts }
            if let delay = retryReader.double("initial_delay_s", range: 0...3_600, issues: &issues) { retry.initialDelaySeconds = delay }
            if let delay = retryReader.double("max_delay_s", range: 0...86_400, issues: &issues) { retry.maxDelaySeconds = delay }
            retryReader.reportUnknownKeys(issues: &issues)
        }
        reader.reportUnknownKeys(issues: &issues)
        guard let query, let cursor, let key else { return nil }
        var sql = query.0.trimmingCharacters(in: .whitespacesAndNewlines)
        while sql.hasSuffix(";") { sql = String(sql.dropLast()).trimmingCharacters(in: .whitespacesAndNewlines) }
        if sql.isEmpty { issues.add("source.query is empty", at: query.1) }
        return SourceConfig(connection: connection, connectionLocation: connectionLocation, query: sql, queryLocation: query.1, cursorColumn: cursor.0,
                            cursorLocation: cursor.1, keyColumn: key.0, keyLocation: key.1, changeColumn: change?.0, retry: retry)
    }

    private static func decodeLedger(_ node: ConfigNode, environment: [String: String], issues: inout ConfigIssues) -> LedgerConfig? {
        guard var reader = MappingReader(node, issues: &issues) else { return nil }
        var connection: String?
        let given = reader.string("connection", issues: &issues)
        let variable = reader.string("connection_env", issues: &issues)
        switch (given, variable) {
        case (let (text, location)?, nil):
            connection = expand(text, environment: environment, at: location, issues: &issues)
        case (nil, let (name, location)?):
            if let value = environment[name], !value.isEmpty { connection = value } else {
                issues.add("ledger.connection_env: environment variable '\(name)' is not set", at: location)
            }
        case (_?, let (_, location)?):
            issues.add("give ledger.connection or ledger.connection_env, not both", at: location)
        case (nil, nil):
            issues.add("'ledger' needs connection (a libpq connection string) or connection_env (the variable holding one)", at: node.location)
        }
        var table = "etl_runs"
        if let (text, location) = reader.string("table", issues: &issues) {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789_")
            if parts.count > 2 || parts.contains(where: { $0.isEmpty || $0.first!.isNumber || !$0.allSatisfy(allowed.contains) }) {
                issues.add("ledger.table must be a lower-case table name, optionally schema-qualified (e.g. ops.etl_runs), found '\(text)'", at: location)
            }
            table = text
        }
        reader.reportUnknownKeys(issues: &issues)
        return connection.map { LedgerConfig(connection: $0, table: table) }
    }

    private static func decodeColumns(_ node: ConfigNode, issues: inout ConfigIssues) -> [ColumnConfig] {
        guard let items = node.sequence else {
            issues.add("'columns' must be a list of column entries", at: node.location)
            return []
        }
        if items.isEmpty { issues.add("'columns' lists no column", at: node.location) }
        var seen: [String: SourceLocation] = [:]
        var columns: [ColumnConfig] = []
        for item in items {
            guard var reader = MappingReader(item, issues: &issues) else { continue }
            guard let (name, nameLocation) = reader.string("name", required: true, issues: &issues) else {
                reader.reportUnknownKeys(issues: &issues, allowedExtra: ["from", "encoding", "default"] + TransformRegistry.keys)
                continue
            }
            if name.isEmpty || name.hasPrefix("__") {
                issues.add("column name '\(name)' is reserved or empty (names starting with __ belong to etl, e.g. __key__)", at: nameLocation)
            }
            if let first = seen[name] {
                issues.add("column '\(name)' is declared twice (first at line \(first.line))", at: nameLocation)
            }
            seen[name] = nameLocation
            let fromEntry = reader.string("from", issues: &issues)
            let from = fromEntry?.0 ?? name
            let transformKeys = reader.keys.filter { TransformRegistry.named($0) != nil }.sorted()
            var transform: (any ColumnTransform)?
            if transformKeys.count > 1 {
                issues.add("column '\(name)' names several transforms (\(transformKeys.joined(separator: ", "))); use one column entry per transform", at: item.location)
            } else if let key = transformKeys.first, let type = TransformRegistry.named(key) {
                for plainKey in ["encoding", "default"] where reader.has(plainKey) {
                    issues.add("'\(plainKey)' applies to plain columns; '\(key)' decides its own encoding", at: reader.entries[plainKey]!.keyLocation)
                    _ = reader.node(plainKey)
                }
                let options = reader.node(key) ?? ConfigNode(node: Node.mapping(Node.Mapping([])), path: "\(item.path).\(key)", file: item.file)
                transform = type.parse(options, column: name, issues: &issues)
            } else {
                var value = ValueTransform()
                if let (text, location) = reader.string("encoding", issues: &issues) {
                    if let parsed = try? MDSEncoding(parsing: text) {
                        value.encoding = parsed
                    } else {
                        issues.add("unknown MDS encoding '\(text)' (e.g. str, bytes, int64, float32, json, jpeg, png, ndarray:uint8)", at: location)
                    }
                }
                value.defaultText = reader.string("default", issues: &issues)?.0
                transform = value
            }
            reader.reportUnknownKeys(issues: &issues, allowedExtra: TransformRegistry.keys)
            if let transform {
                columns.append(ColumnConfig(name: name, from: from, transform: transform, location: nameLocation,
                                            fromLocation: fromEntry?.1 ?? nameLocation))
            }
        }
        return columns
    }

    private static func decodeSplit(_ node: ConfigNode, issues: inout ConfigIssues) -> SplitConfig? {
        guard var reader = MappingReader(node, issues: &issues) else { return nil }
        var split = SplitConfig.default
        if let (group, location) = reader.string("group_column", issues: &issues) {
            split.groupColumn = group
            split.groupLocation = location
        }
        if let (seed, _) = reader.string("seed", issues: &issues) { split.seed = seed }
        if let ratiosNode = reader.node("ratios") {
            if let pairs = ratiosNode.mapping {
                var ratios: [(name: String, ratio: Double)] = []
                var allValid = true
                for pair in pairs {
                    guard let text = pair.value.scalarString, let ratio = Double(text), ratio >= 0, ratio <= 1 else {
                        issues.add("split ratio of '\(pair.key)' must be a number between 0 and 1", at: pair.value.location)
                        allValid = false
                        continue
                    }
                    if pair.key.isEmpty || pair.key.contains("/") || pair.key.hasPrefix(".") {
                        issues.add("split name '\(pair.key)' must be a plain directory name", at: pair.keyLocation)
                    }
                    ratios.append((pair.key, ratio))
                }
                let total = ratios.reduce(0) { $0 + $1.ratio }
                if ratios.isEmpty {
                    issues.add("'split.ratios' names no split", at: ratiosNode.location)
                } else if allValid && abs(total - 1) > 1e-9 {
                    issues.add("split ratios must sum to 1, they sum to \(String(format: "%g", total))", at: ratiosNode.location)
                }
                split.ratios = ratios
            } else {
                issues.add("'split.ratios' must be a mapping like {train: 0.8, val: 0.1, test: 0.1}", at: ratiosNode.location)
            }
        }
        reader.reportUnknownKeys(issues: &issues)
        return split
    }

    private static func decodeShards(_ node: ConfigNode, issues: inout ConfigIssues) -> ShardConfig? {
        guard var reader = MappingReader(node, issues: &issues) else { return nil }
        var shards = ShardConfig.default
        if let (text, location) = reader.string("size_limit", issues: &issues) {
            if let bytes = parseByteSize(text), bytes >= 1024, bytes < (1 << 32) {
                shards.sizeLimit = bytes
            } else {
                issues.add("'shards.size_limit' must be a size from 1KiB to under 4GiB such as 64MiB or 67108864, found '\(text)'", at: location)
            }
        }
        if let (text, location) = reader.string("checkpoint_every", issues: &issues) {
            if let bytes = parseByteSize(text), bytes >= 1024 {
                shards.checkpointEvery = bytes
            } else {
                issues.add("'shards.checkpoint_every' must be a size of at least 1KiB such as 256MiB, found '\(text)'", at: location)
            }
        }
        if let (text, location) = reader.string("compression", issues: &issues) {
            if text == "none" {
                shards.zstdLevel = nil
            } else if text == "zstd" {
                shards.zstdLevel = 3
            } else if text.hasPrefix("zstd:"), let level = Int(text.dropFirst(5)), (1...22).contains(level) {
                shards.zstdLevel = level
            } else {
                issues.add("'shards.compression' must be none, zstd, or zstd:<level 1-22>, found '\(text)'", at: location)
            }
        }
        if let list = reader.node("hashes") {
            let names = list.sequence?.compactMap(\.scalarString) ?? []
            let algorithms = names.compactMap(MDSHashAlgorithm.init(rawValue:))
            if list.sequence == nil || algorithms.count != names.count || !algorithms.contains(.sha256) {
                issues.add("'shards.hashes' must be a list of sha256 and xxh64 that includes sha256 (manifests record it)", at: list.location)
            } else {
                shards.hashes = algorithms
            }
        }
        reader.reportUnknownKeys(issues: &issues)
        return shards
    }

    /// `storage:` for an `s3://` output root. Settings only: credentials are never written in a pipeline file (they
    /// come from the environment or the shared AWS files, like every AWS tool's).
    private static func decodeStorage(_ node: ConfigNode, environment: [String: String], issues: inout ConfigIssues) -> S3StorageOptions {
        var storage = S3StorageOptions()
        guard var reader = MappingReader(node, issues: &issues) else { return storage }
        if let (text, location) = reader.string("endpoint_url", issues: &issues) {
            let url = expand(text, environment: environment, at: location, issues: &issues)
            let parsed = URL(string: url)
            if !url.isEmpty, !(["http", "https"].contains(parsed?.scheme?.lowercased() ?? "") && parsed?.host != nil
                               && (parsed?.path ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "/")).isEmpty) {
                issues.add("storage.endpoint_url '\(url)' is not an http(s)://host[:port] URL", at: location)
            }
            storage.endpointURL = url.isEmpty ? nil : url
        }
        if let (text, location) = reader.string("region", issues: &issues) {
            let region = expand(text, environment: environment, at: location, issues: &issues)
            if !region.isEmpty, !region.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) {
                issues.add("storage.region '\(region)' is not a region name such as eu-west-1", at: location)
            }
            storage.region = region.isEmpty ? nil : region
        }
        storage.pathStyle = reader.bool("path_style", issues: &issues)
        if let (text, location) = reader.string("profile", issues: &issues) {
            let profile = expand(text, environment: environment, at: location, issues: &issues)
            storage.profile = profile.isEmpty ? nil : profile
        }
        reader.reportUnknownKeys(issues: &issues)
        return storage
    }

    private static func decodeMedia(_ node: ConfigNode, issues: inout ConfigIssues) -> MediaConfig? {
        guard var reader = MappingReader(node, issues: &issues) else { return nil }
        var media = MediaConfig.default
        if let workers = reader.int("workers", range: 1...256, issues: &issues) { media.workers = workers }
        if let (root, location) = reader.string("root", issues: &issues) {
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) || !isDirectory.boolValue {
                issues.add("media.root '\(root)' is not a directory", at: location)
            }
            media.mediaRoot = root
        }
        if let limits = reader.node("limits"), var limitsReader = MappingReader(limits, issues: &issues) {
            if let mb = limitsReader.int("max_input_mb", range: 1...65_536, issues: &issues) { media.maxInputBytes = mb << 20 }
            if let pixels = limitsReader.int("max_pixels", range: 1...1_000_000_000, issues: &issues) { media.maxPixels = pixels }
            if let side = limitsReader.int("max_dimension", range: 16...65_536, issues: &issues) { media.maxDimension = side }
            if let seconds = limitsReader.double("max_duration_s", range: 0.1...86_400, issues: &issues) { media.maxDurationSeconds = seconds }
            if let seconds = limitsReader.double("decode_timeout_s", range: 0.1...3_600, issues: &issues) { media.decodeTimeoutSeconds = seconds }
            limitsReader.reportUnknownKeys(issues: &issues)
        }
        reader.reportUnknownKeys(issues: &issues)
        return media
    }

    private static func checkIdentifier(_ text: String, what: String, at location: SourceLocation, issues: inout ConfigIssues) {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "_-."))
        if text.isEmpty || text.hasPrefix(".") || text.unicodeScalars.contains(where: { !allowed.contains($0) || !$0.isASCII }) {
            issues.add("'\(what)' must be ASCII letters, digits, '_', '-' or '.', not starting with '.', found '\(text)'", at: location)
        }
    }

    /// `${VAR}` and `${VAR:-fallback}`; an unset variable without fallback is an error, never an empty string.
    static func expand(_ text: String, environment: [String: String], at location: SourceLocation, issues: inout ConfigIssues) -> String {
        var result = ""
        var rest = Substring(text)
        while let open = rest.range(of: "${") {
            result += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                issues.add("unterminated '${' in '\(text)'", at: location)
                return result + rest[open.lowerBound...]
            }
            let body = rest[open.upperBound..<close]
            let parts = body.split(separator: ":-", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            if let value = environment[parts[0]], !(parts.count == 2 && value.isEmpty) {
                result += value
            } else if parts.count == 2 {
                result += parts[1]
            } else {
                issues.add("environment variable '\(parts[0])' is not set", at: location)
            }
            rest = rest[rest.index(after: close)...]
        }
        return result + rest
    }

    private static func yamlErrorLocation(_ error: YamlError, file: String) -> SourceLocation {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return SourceLocation(file: file, line: mark.line, column: mark.column)
        case .duplicatedKeysInMapping(_, let context):
            return SourceLocation(file: file, line: context.mark.line, column: context.mark.column)
        default:
            return SourceLocation(file: file, line: 1, column: 1)
        }
    }

    private static func yamlProblem(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _), .composer(let context, let problem, _, _):
            return [context?.text, problem].compactMap { $0 }.joined(separator: ": ")
        case .duplicatedKeysInMapping(let duplicates, _):
            return "duplicate keys \(duplicates.joined(separator: ", "))"
        default:
            return "\(error)"
        }
    }
}

/// "64MiB", "512KB", "1GiB", "4096": binary units, since shard limits are about memory and file sizes.
func parseByteSize(_ text: String) -> Int? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("B", 1)]
    for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
        guard let number = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), number > 0 else { return nil }
        return Int(number * Double(factor))
    }
    return Int(trimmed)
}

extension SplitConfig {
    static let `default` = SplitConfig(groupColumn: nil, groupLocation: nil, seed: "etl",
                                        ratios: [("train", 0.8), ("val", 0.1), ("test", 0.1)])
}

extension ShardConfig {
    static let `default` = ShardConfig(sizeLimit: 1 << 26, zstdLevel: 3, hashes: [.sha256])
}

extension MediaConfig {
    static let `default` = MediaConfig(
        workers: max(1, ProcessInfo.processInfo.activeProcessorCount), mediaRoot: nil,
        maxInputBytes: 512 << 20, maxPixels: 40_000_000, maxDimension: 16_384, maxDurationSeconds: 3_600,
        decodeTimeoutSeconds: 60)
}
