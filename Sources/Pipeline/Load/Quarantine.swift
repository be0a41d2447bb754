import Dataset
import Foundation
import SystemIO

/// One rejected source row, as a line of the version's quarantine.jsonl.
public struct QuarantineEntry: Codable, Sendable, Equatable {
    public var key: String?
    public var reason: String
    public var message: String
    public var column: String?
}

/// Appends quarantined rows to the staged version's quarantine.jsonl and counts them by reason.
final class QuarantineFile {
    static let fileName = "quarantine.jsonl"

    private var file: SystemFile?
    let path: String
    private(set) var count = 0
    private(set) var byReason: [String: Int] = [:]
    private let encoder: JSONEncoder

    init(directory: String) throws(DatasetError) {
        path = "\(directory)/\(Self.fileName)"
        do { file = try SystemFile.createExclusive(path, role: "quarantine file") } catch { throw DatasetError(error) }
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    /// Reopens the file a killed run left, cut back to its last checkpoint.
    init(directory: String, resumingAt length: Int, count: Int, byReason: [String: Int]) throws(DatasetError) {
        path = "\(directory)/\(Self.fileName)"
        do {
            let reopened = try SystemFile.openForAppending(path, role: "quarantine file")
            try reopened.truncate(to: length)
            file = consume reopened
        } catch { throw DatasetError(error) }
        self.count = count
        self.byReason = byReason
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    /// Syncs and returns the length: a checkpoint's view of the file.
    func checkpoint() throws(DatasetError) -> Int {
        do {
            try file?.sync()
            return try file?.size() ?? 0
        } catch { throw DatasetError(error) }
    }

    func append(_ entry: QuarantineEntry) throws(DatasetError) {
        guard let line = try? encoder.encode(entry) else { return }
        do { try file?.write(Array(line) + [0x0A]) } catch { throw DatasetError(error) }
        count += 1
        byReason[entry.reason, default: 0] += 1
    }

    func close() throws(DatasetError) {
        guard var open = file.take() else { return }
        do {
            try open.sync()
            try open.close()
        } catch { throw DatasetError(error) }
    }
}
