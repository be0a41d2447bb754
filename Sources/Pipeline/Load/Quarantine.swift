import Foundation
import Dataset
import MDS

/// One rejected source row, as a line of the version's quarantine.jsonl.
public struct QuarantineEntry: Codable, Sendable, Equatable {
    public var key: String?
    public var reason: String
    public var message: String
    public var column: String?
}

/// Appends quarantined rows to the staging directory's quarantine.jsonl and counts them by reason.
final class QuarantineFile {
    static let fileName = "quarantine.jsonl"

    private let handle: FileHandle
    let url: URL
    private(set) var count = 0
    private(set) var byReason: [String: Int] = [:]
    private let encoder: JSONEncoder

    init(directory: URL) throws(DatasetStoreError) {
        url = directory.appendingPathComponent(Self.fileName)
        guard FileManager.default.createFile(atPath: url.path, contents: nil), let handle = try? FileHandle(forWritingTo: url) else {
            throw DatasetStoreError(.writeFailed, path: url.path, "cannot create the quarantine file")
        }
        self.handle = handle
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    func append(_ entry: QuarantineEntry) throws(DatasetStoreError) {
        do {
            try handle.write(contentsOf: try encoder.encode(entry) + Data("\n".utf8))
        } catch {
            throw DatasetStoreError(.writeFailed, path: url.path, "cannot write the quarantine file: \(error.localizedDescription)")
        }
        count += 1
        byReason[entry.reason, default: 0] += 1
    }

    func close() throws(DatasetStoreError) {
        do {
            try handle.synchronize()
            try handle.close()
        } catch {
            throw DatasetStoreError(.writeFailed, path: url.path, "cannot close the quarantine file: \(error.localizedDescription)")
        }
    }
}
