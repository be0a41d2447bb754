@testable import Dataset
import Foundation
import ObjectStorage
import Testing

/// The store contract on S3: a fresh bucket on the S3 server scripts/test starts (moto, on loopback) for each check.
@Suite struct S3DatasetStoreContractTests {
    static func makeStore(_ dataset: String) throws -> S3DatasetStore {
        guard let endpoint = ProcessInfo.processInfo.environment["ETL_TEST_S3_ENDPOINT"] else {
            throw DatasetError(.invalidLocation, path: "ETL_TEST_S3_ENDPOINT", "run the tests with scripts/test, which starts an S3 server")
        }
        let credentials = S3Credentials(accessKeyId: "AKIACONTRACTTEST0001", secretAccessKey: "contract-secret", source: "test")
        let client = S3Client(configuration: S3Configuration(endpoint: endpoint, region: "us-east-1", pathStyle: true, credentials: credentials))
        let bucket = "etl-contract-\(UUID().uuidString.prefix(12).lowercased())"
        try client.createBucket(bucket)
        return S3DatasetStore(root: S3Location(bucket: bucket, prefix: "some/prefix"), dataset: dataset, client: client)
    }

    @Test(arguments: DatasetStoreContract.checks.map(\.name))
    func contract(_ name: String) throws {
        try DatasetStoreContract.run(name) { try Self.makeStore($0) }
    }

    @Test func theRootListsItsDatasetsAndDeletionDebrisIsRemoved() throws {
        let store = try Self.makeStore("fb")
        let v1 = try DatasetStoreContract.publish(store, keys: ["1"])
        _ = try DatasetStoreContract.publish(S3DatasetStore(root: store.root, dataset: "other", client: store.client), keys: ["2"])
        let root = S3DatasetRoot(root: store.root, client: store.client)
        #expect(try root.datasetNames() == ["fb", "other"])
        // As if a gc died between removing a commit record and deleting the version's objects.
        let v2 = try DatasetStoreContract.publish(store, keys: ["3"])
        try store.client.delete(bucket: store.root.bucket, key: "some/prefix/fb/_commits/\(v2).json")
        #expect(try store.versions() == [v1])
        #expect(store.removeAbandonedStaging().contains { $0.contains("/\(v2)/") })
        #expect(try store.client.list(bucket: store.root.bucket, prefix: "some/prefix/fb/\(v2)/").objects.isEmpty)
    }

    @Test func aLeaseIsStaleWhenExpiredOrItsProcessIsGoneOnThisHost() {
        let host = ProcessInfo.processInfo.hostName
        let now = Date().timeIntervalSince1970
        func lease(host: String, pid: Int32, expires: Double) -> S3DatasetLock.Lease {
            S3DatasetLock.Lease(runId: "r", host: host, pid: pid, acquiredAt: "t", expiresAt: expires)
        }
        #expect(!lease(host: host, pid: getpid(), expires: now + 60).isStale(now: now, host: host), "live here, not expired")
        #expect(lease(host: host, pid: getpid(), expires: now - 1).isStale(now: now, host: host), "expired")
        // A pid above the kernel's maximum cannot be a live process.
        #expect(lease(host: host, pid: 4_194_304 + 7, expires: now + 60).isStale(now: now, host: host), "its process is gone")
        #expect(!lease(host: "another-host", pid: 4_194_304 + 7, expires: now + 60).isStale(now: now, host: host),
                "on another host only the expiry tells")
    }
}
