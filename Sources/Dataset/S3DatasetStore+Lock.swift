import Foundation
import ObjectStorage

/// The run lock on S3: a lease object `_lock.json` created with `If-None-Match: *` (so of two runs exactly one
/// gets it), renewed by a heartbeat while the run lives and deleted when the lock is dropped. A lease is stale, and
/// taken over, when its expiry has passed (the holder stopped renewing: it died, or lost the network for longer than
/// the lease), or when it was taken on this host by a process that no longer exists (a killed run, found at once).
/// The same lease, under another key and with an owner of its own, is the lock of one partition of a partitioned run
/// (`S3DatasetStore+RunArea.swift`): there every process has the same run id, so the owner tells them apart.
final class S3DatasetLock: DatasetLock, @unchecked Sendable {
    struct Lease: Codable {
        var runId: String
        var host: String
        var pid: Int32
        var acquiredAt: String
        var expiresAt: Double
        /// Who holds the lease when the run id does not tell (a partition's lock); nil: the run id does.
        var owner: String? = nil

        enum CodingKeys: String, CodingKey {
            case runId = "run_id", host, pid, acquiredAt = "acquired_at", expiresAt = "expires_at_unix", owner
        }

        var holder: String { owner ?? runId }

        var description: String { "run \(runId), pid \(pid) on \(host), since \(acquiredAt)" }

        /// Stale: expired, or its process on this host is gone.
        func isStale(now: Double, host thisHost: String) -> Bool {
            if now > expiresAt { return true }
            return host == thisHost && kill(pid, 0) != 0 && errno == ESRCH
        }
    }

    /// How long a lease lasts without renewal; renewed every third of it.
    static let leaseSeconds: Double = 120

    let store: S3DatasetStore
    let lease: Lease
    /// The lease object's key.
    let key: String
    private let heartbeat: Heartbeat

    /// Takes the lease `name` (a path below the dataset); `busy` starts the error when another holder has it.
    static func acquire(store: S3DatasetStore, runId: String, name: String = S3DatasetStore.lockName, owner: String? = nil,
                        busy: String = "another run holds this dataset's lock") throws(DatasetError) -> S3DatasetLock {
        let host = ProcessInfo.processInfo.hostName
        let key = store.key(name)
        let lease = Lease(runId: runId, host: host, pid: getpid(), acquiredAt: ISO8601DateFormatter().string(from: Date()),
                          expiresAt: Date().timeIntervalSince1970 + leaseSeconds, owner: owner)
        for attempt in 0..<2 {
            let outcome = try store.s3 { () throws(ObjectStorageError) in
                try store.client.put(encode(lease), bucket: store.bucket, key: key, ifNoneMatch: true, contentType: "application/json")
            }
            if outcome == .written { return S3DatasetLock(store: store, lease: lease, key: key) }
            let holder = try? JSONDecoder().decode(Lease.self, from: Data(store.client.get(bucket: store.bucket, key: key)))
            if holder?.holder == lease.holder { return S3DatasetLock(store: store, lease: lease, key: key) }
            guard attempt == 0, let holder, holder.isStale(now: Date().timeIntervalSince1970, host: host) else {
                throw DatasetError(.locked, path: "s3://\(store.bucket)/\(key)", "\(busy)\(holder.map { " (\($0.description))" } ?? "")")
            }
            // A stale lease: remove it and race for a new one (If-None-Match again decides).
            try store.s3 { () throws(ObjectStorageError) in try store.client.delete(bucket: store.bucket, key: key) }
        }
        throw DatasetError(.locked, path: "s3://\(store.bucket)/\(key)", "\(busy) (it was taken over just now)")
    }

    private init(store: S3DatasetStore, lease: Lease, key: String) {
        self.store = store
        self.lease = lease
        self.key = key
        heartbeat = Heartbeat(store: store, lease: lease, key: key)
        // The thread holds the heartbeat, not the lock, so dropping the lock still releases it.
        let heartbeat = heartbeat
        Thread { heartbeat.renewUntilStopped() }.start()
    }

    deinit {
        heartbeat.stop()
        // Only our own lease is deleted: one taken over after it went stale belongs to another run now.
        if let current = try? JSONDecoder().decode(Lease.self, from: Data(store.client.get(bucket: store.bucket, key: key))),
           current.holder == lease.holder {
            try? store.client.delete(bucket: store.bucket, key: key)
        }
    }

    /// Renews the lease every third of its life until stopped, or until the lease is no longer ours.
    final class Heartbeat: @unchecked Sendable {
        let store: S3DatasetStore
        let lease: Lease
        let key: String
        private let condition = NSCondition()
        private var stopped = false

        init(store: S3DatasetStore, lease: Lease, key: String) {
            self.store = store
            self.lease = lease
            self.key = key
        }

        func stop() { condition.withLock { stopped = true; condition.signal() } }

        func renewUntilStopped() {
            while true {
                let done = condition.withLock { () -> Bool in
                    if !stopped { _ = condition.wait(until: Date().addingTimeInterval(S3DatasetLock.leaseSeconds / 3)) }
                    return stopped
                }
                if done { return }
                guard let current = try? JSONDecoder().decode(Lease.self, from: Data(store.client.get(bucket: store.bucket, key: key))),
                      current.holder == lease.holder else { return }
                var renewed = lease
                renewed.expiresAt = Date().timeIntervalSince1970 + S3DatasetLock.leaseSeconds
                _ = try? store.client.put(S3DatasetLock.encode(renewed), bucket: store.bucket, key: key, contentType: "application/json")
            }
        }
    }

    static func encode(_ lease: Lease) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(lease)) ?? Data())
    }
}
