import Foundation
import ObjectStorage

/// The run ledger on S3, which cannot append: one object per run, `_runs/<started at>-<run id>.json`, so the keys
/// list in time order and two processes never write the same object.
struct S3RunLedger: RunLedger {
    let store: S3DatasetStore

    func append(_ record: RunRecord) throws(DatasetError) {
        let line: [UInt8]
        do { line = try record.jsonLine() } catch {
            throw DatasetError(.writeFailed, path: store.location, "cannot encode the run record: \(error)")
        }
        let started = record.startedAt.filter { $0.isNumber || $0 == "T" || $0 == "Z" || $0 == "." }
        let id = record.runId ?? "pid\(record.pid)-\(UUID().uuidString.prefix(8).lowercased())"
        let key = store.key("\(S3DatasetStore.runsFolder)/\(started)-\(id).json")
        try store.s3 { () throws(ObjectStorageError) in
            try store.client.put(line, bucket: store.bucket, key: key, contentType: "application/json")
        }
    }

    func records() throws(DatasetError) -> [RunRecord] {
        let objects = try store.s3 { () throws(ObjectStorageError) in
            // Only the objects right under _runs/: the folders beside them are partitioned runs' areas.
            try store.client.list(bucket: store.bucket, prefix: store.key("\(S3DatasetStore.runsFolder)/"), delimiter: "/").objects
        }
        var bytes: [UInt8] = []
        for object in objects.sorted(by: { $0.key < $1.key }) {
            bytes += try store.s3 { () throws(ObjectStorageError) in try store.client.get(bucket: store.bucket, key: object.key) }
            if bytes.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        }
        return RunRecord.decodeLines(bytes)
    }
}
