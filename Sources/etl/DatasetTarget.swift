import ArgumentParser
import Dataset
import Foundation

/// `<dataset>[@<version>]` as the dataset tools take it.
struct DatasetTarget {
    var dataset: String
    var version: String?

    init(_ text: String) throws {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let name = parts.first, !name.isEmpty, !name.contains("/") else {
            throw ValidationError("'\(text)' is not <dataset>[@<version>]")
        }
        dataset = name
        version = parts.count > 1 ? parts[1] : nil
        if let version, VersionName.number(version) == nil {
            throw ValidationError("'\(version)' in '\(text)' is not a version name (v1, v2, …)")
        }
    }

    var description: String { version.map { "\(dataset)@\($0)" } ?? dataset }

    /// The store, and the named version or the newest one; `.notFound` when there is none.
    func resolve(root: String) throws(DatasetError) -> (store: any DatasetStore, version: String) {
        let store = try DatasetStores.open(outputRoot: root, dataset: dataset)
        let versions = try store.versions()
        if let version {
            guard versions.contains(version) else {
                throw DatasetError(.notFound, path: "\(store.location)/\(version)", "dataset '\(dataset)' has no version '\(version)'")
            }
            return (store, version)
        }
        guard let latest = versions.last else {
            throw DatasetError(.notFound, path: store.location, "dataset '\(dataset)' has no published version")
        }
        return (store, latest)
    }

    /// The store the maintenance commands (pin, gc, forget) work on: one with at least one published version.
    static func maintainedStore(root: String, dataset: String) throws(DatasetError) -> any DatasetStore {
        let store = try DatasetStores.open(outputRoot: root, dataset: dataset)
        guard !((try? store.versions()) ?? []).isEmpty else {
            throw DatasetError(.notFound, path: store.location, "dataset '\(dataset)' has no published version")
        }
        return store
    }
}

/// Shared by the dataset tools.
struct RootOption: ParsableArguments {
    @Option(help: "The output root datasets are published under.")
    var root = "datasets"
}

/// Writes an Encodable as pretty, key-sorted JSON on stdout.
func printJSON(_ value: some Encodable) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}
