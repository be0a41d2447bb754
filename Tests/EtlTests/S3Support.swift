import Dataset
import Foundation
import MDS
import ObjectStorage
import Testing

/// A bucket on the S3 server scripts/test starts (moto, on loopback), and the environment that points `etl` at it
/// with made-up credentials, which the tests then look for in everything etl prints and stores.
final class S3World {
    static let accessKeyId = "AKIAETLRUNKEY4Q8W2E6"
    static let secret = "etlRunSecret/q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6"
    static let token = "etlRunSessionToken+IQoJb3JpZ2luX2VjEJr"
    static var secrets: [String] { [accessKeyId, secret, token] }

    let bucket: String
    let client: S3Client
    let endpoint: String

    init() throws {
        guard let endpoint = ProcessInfo.processInfo.environment["ETL_TEST_S3_ENDPOINT"] else {
            throw TestFailure("ETL_TEST_S3_ENDPOINT is not set: run the tests with scripts/test, which starts an S3 server")
        }
        self.endpoint = endpoint
        let credentials = S3Credentials(accessKeyId: Self.accessKeyId, secretAccessKey: Self.secret, sessionToken: Self.token, source: "test")
        client = S3Client(configuration: S3Configuration(endpoint: endpoint, region: "us-east-1", pathStyle: true, credentials: credentials))
        bucket = "etl-run-\(UUID().uuidString.prefix(12).lowercased())"
        try client.createBucket(bucket)
    }

    var root: String { "s3://\(bucket)/team/datasets" }

    /// For `etl`: the credentials in the standard variables, no shared files, the endpoint in AWS_ENDPOINT_URL.
    var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": Self.accessKeyId, "AWS_SECRET_ACCESS_KEY": Self.secret, "AWS_SESSION_TOKEN": Self.token,
         "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
         "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_CONFIG_FILE": "/nonexistent/config"]
    }

    func store(_ dataset: String) -> S3DatasetStore {
        S3DatasetStore(root: S3Location(url: root)!, dataset: dataset, client: client)
    }

    /// Keys below the dataset, relative to it, sorted.
    func keys(_ dataset: String) throws -> [String] {
        let prefix = "team/datasets/\(dataset)/"
        return try client.list(bucket: bucket, prefix: prefix).objects.map { String($0.key.dropFirst(prefix.count)) }.sorted()
    }

    func pipeline(_ yaml: String = basicPipeline) -> String { "output_root: \(root)\n" + yaml }

    /// Downloads a version's split and reads every sample with our MDS reader (hashes checked).
    func samples(_ dataset: String, _ version: String) throws -> [String: [String: MDSValue]] {
        let local = FileManager.default.temporaryDirectory.appendingPathComponent("s3-read-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: local) }
        var all: [String: [String: MDSValue]] = [:]
        let manifest = try store(dataset).manifest(of: version)
        for split in manifest.splits.keys {
            let directory = local.appendingPathComponent(split)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let prefix = "team/datasets/\(dataset)/\(version)/\(split)/"
            for object in try client.list(bucket: bucket, prefix: prefix).objects {
                try client.download(bucket: bucket, key: object.key, to: directory.appendingPathComponent(String(object.key.dropFirst(prefix.count))).path)
            }
            try MDSReader(directory: directory).forEachSample(verifyHashes: true) { sample in
                guard case .string(let key)? = sample["__key__"] else { throw TestFailure("sample without __key__") }
                all[key] = sample
            }
        }
        return all
    }

    static func expectNoSecret(_ text: String, in what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for secret in secrets {
            #expect(!text.contains(secret), "a credential appears in \(what)", sourceLocation: sourceLocation)
        }
    }
}

extension Workspace {
    func startEtl(_ arguments: [String], environment: [String: String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: etlBinary)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (process, err)
    }

    func waitForGate(_ gate: String, count: Int = 1) -> Bool {
        let deadline = Date().addingTimeInterval(90)
        func ready() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasPrefix("\((gate as NSString).lastPathComponent).ready.") }.count
        }
        while ready() < count && Date() < deadline { usleep(20_000) }
        return ready() >= count
    }
}
