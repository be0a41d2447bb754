import Foundation
import SystemIO

/// Versions a person marked as not to be removed by `etl gc`: the dataset file `pins.json`, `{"pinned": ["v3", …]}`,
/// replaced atomically. Changed only under the dataset lock, so a pin never races a gc.
public struct PinList: Codable, Sendable, Equatable {
    public static let fileName = "pins.json"
    public var pinned: [String]

    public init(pinned: [String] = []) { self.pinned = VersionName.sorted(Array(Set(pinned))) }

    public func contains(_ version: String) -> Bool { pinned.contains(version) }

    /// Returns false when nothing changed (already pinned / not pinned).
    public mutating func set(_ version: String, pinned on: Bool) -> Bool {
        guard contains(version) != on else { return false }
        self = PinList(pinned: on ? pinned + [version] : pinned.filter { $0 != version })
        return true
    }

    public static func path(in datasetDirectory: String) -> String { "\(datasetDirectory)/\(fileName)" }

    /// The pins of a dataset; none when the file does not exist.
    public static func load(from store: any DatasetStore) throws(DatasetError) -> PinList {
        try decode(store.readDatasetFile(fileName), path: store.datasetFileLocation(fileName))
    }

    public func save(to store: any DatasetStore) throws(DatasetError) {
        try store.writeDatasetFile(PinList.fileName, encoded())
    }

    /// The pins of a local dataset directory; none when the file does not exist.
    public static func load(datasetDirectory: String) throws(DatasetError) -> PinList {
        let path = path(in: datasetDirectory)
        let bytes: [UInt8]?
        do { bytes = try FileSystem.readAll(path, role: fileName) } catch { throw DatasetError(error, code: .corrupt) }
        return try decode(bytes, path: path)
    }

    public func save(datasetDirectory: String) throws(DatasetError) {
        do { try FileSystem.writeAtomically(encoded(), to: PinList.path(in: datasetDirectory), role: PinList.fileName) } catch {
            throw DatasetError(error)
        }
    }

    private static func decode(_ bytes: [UInt8]?, path: String) throws(DatasetError) -> PinList {
        guard let bytes else { return PinList() }
        do { return PinList(pinned: try JSONDecoder().decode(PinList.self, from: Data(bytes)).pinned) } catch {
            throw DatasetError(.corrupt, path: path, "\(path) is not a pin list ({\"pinned\": [\"v1\", …]}): \(error)")
        }
    }

    private func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data()) + [0x0a]
    }
}
