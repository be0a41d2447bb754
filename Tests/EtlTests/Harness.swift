import Foundation
import Postgres
import Dataset
import MDS
import Testing

/// The built `etl` binary: scripts/test exports ETL_BIN; a plain `swift test` after `swift build` finds it too.
let etlBinary: String = {
    if let path = ProcessInfo.processInfo.environment["ETL_BIN"] { return path }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/etl").path
}()

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var output: String { stdout + stderr }
}

/// Runs a command to completion, capturing both streams (read concurrently so a full pipe never deadlocks).
func runProcess(_ executable: String, _ arguments: [String], cwd: URL? = nil, environment: [String: String] = [:]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let cwd { process.currentDirectoryURL = cwd }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    nonisolated(unsafe) var errData = Data()
    let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !reader.isFinished { usleep(1000) }
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// One test's world: its own schema in the test database and its own working directory with pipelines/ and datasets/.
final class Workspace {
    let schema: String
    let directory: URL
    let db: PostgresConnection

    init(_ label: String = "t") throws {
        schema = "etl_\(label)_\(UUID().uuidString.prefix(8).lowercased())"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("etl-test-\(schema)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("pipelines"), withIntermediateDirectories: true)
        db = try PostgresConnection(conninfo: "")
        try db.execute("CREATE SCHEMA \(schema)")
    }

    deinit {
        try? db.execute("DROP SCHEMA IF EXISTS \(schema) CASCADE")
        try? FileManager.default.removeItem(at: directory)
    }

    func sql(_ text: String) throws {
        try db.execute(text.replacingOccurrences(of: "$S", with: schema))
    }

    func writePipeline(_ name: String, _ yaml: String) throws {
        try yaml.replacingOccurrences(of: "$S", with: schema)
            .write(to: directory.appendingPathComponent("pipelines/\(name).yaml"), atomically: true, encoding: .utf8)
    }

    @discardableResult
    func etl(_ arguments: String..., environment: [String: String] = [:]) throws -> ProcessResult {
        try runProcess(etlBinary, arguments, cwd: directory, environment: environment)
    }

    var datasets: URL { directory.appendingPathComponent("datasets") }

    func versionDirectory(_ dataset: String, _ version: String) -> URL {
        datasets.appendingPathComponent(dataset).appendingPathComponent(version)
    }

    func versions(_ dataset: String) -> [String] {
        (try? LocalDatasetStore(outputRoot: datasets.path, dataset: dataset).versions()) ?? []
    }

    func manifest(_ dataset: String, _ version: String) throws -> DatasetManifest {
        try LocalDatasetStore(outputRoot: datasets.path, dataset: dataset).manifest(of: version)
    }

    /// Every sample of one split of a version, keyed by __key__.
    func samples(_ dataset: String, _ version: String, split: String) throws -> [String: [String: MDSValue]] {
        let directory = versionDirectory(dataset, version).appendingPathComponent(split)
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("index.json").path) else { return [:] }
        var samples: [String: [String: MDSValue]] = [:]
        try MDSReader(directory: directory).forEachSample(verifyHashes: true) { sample in
            guard case .string(let key)? = sample["__key__"] else { throw TestFailure("sample without __key__") }
            samples[key] = sample
        }
        return samples
    }

    /// All samples of a version across its splits, with the split each is in.
    func allSamples(_ dataset: String, _ version: String) throws -> [String: (split: String, values: [String: MDSValue])] {
        var all: [String: (String, [String: MDSValue])] = [:]
        for split in try manifest(dataset, version).splits.keys {
            for (key, values) in try samples(dataset, version, split: split) {
                #expect(all[key] == nil, "key \(key) in two splits")
                all[key] = (split, values)
            }
        }
        return all
    }

    /// Names of the files left in the dataset directory (staging debris shows up here).
    func datasetEntries(_ dataset: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: datasets.appendingPathComponent(dataset).path)) ?? []).sorted()
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A feedback table with n rows: id, user_id (10 users), rating, label, score, payload (~260 bytes), created_at.
func seedFeedback(_ ws: Workspace, from first: Int = 1, count: Int) throws {
    if first == 1 {
        try ws.sql("""
            CREATE TABLE $S.feedback (
                id bigint PRIMARY KEY, user_id bigint NOT NULL, rating smallint, label text NOT NULL,
                score double precision NOT NULL, payload bytea NOT NULL, created_at timestamptz NOT NULL)
            """)
    }
    try ws.sql("""
        INSERT INTO $S.feedback
        SELECT g, g % 10, (g % 5) + 1, (ARRAY['good','bad','meh'])[1 + g % 3], g / 8.0,
               decode(repeat(lpad(to_hex(g), 8, '0'), 64 + g % 5), 'hex'),
               timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
        FROM generate_series(\(first), \(first + count - 1)) AS g
        """)
}

let basicPipeline = """
    name: fb
    source:
      query: SELECT id, user_id, rating, label, score, payload, created_at FROM $S.feedback
      cursor_column: id
      key_column: id
    columns:
      - name: rating
      - name: label
      - name: score
      - name: payload
      - name: created_at
    split:
      group_column: user_id
      seed: s1
      ratios: {train: 0.6, val: 0.2, test: 0.2}
    shards:
      size_limit: 4KiB
    """
