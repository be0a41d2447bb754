/// Which partition of a planned run this process reads: `--partition i/N`, `--partition i` (N from the plan), or no
/// flag at all in a Kubernetes Indexed Job, which sets `JOB_COMPLETION_INDEX` for each pod. Pure, so every form and
/// every refusal is tested alone.
public struct PartitionSpec: Equatable, Sendable {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    public static let indexVariable = "JOB_COMPLETION_INDEX"
    /// More partitions than this is a typo, not a plan: each one is a process with its own database connection.
    public static let maximumCount = 1024

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case noIndex
        case indexOutOfRange(index: Int, count: Int)
        case countDiffersFromPlan(given: Int, planned: Int)
        case countOutOfRange(Int)

        public var description: String {
            switch self {
            case .malformed(let text):
                "--partition '\(text)' is not i/N (e.g. 2/8) or i: i counts from 0"
            case .noIndex:
                "which partition? give --partition i/N, or set \(PartitionSpec.indexVariable) (a Kubernetes Indexed Job sets it)"
            case .indexOutOfRange(let index, let count):
                "partition \(index) does not exist: the run has \(count) partitions, numbered 0 to \(count - 1)"
            case .countDiffersFromPlan(let given, let planned):
                "--partition says \(given) partitions but the run was planned with \(planned)"
            case .countOutOfRange(let count):
                "\(count) partitions: give between 1 and \(PartitionSpec.maximumCount)"
            }
        }
    }

    /// The partition from the flag's text (nil when not given) and the environment, checked against the plan's count.
    public static func resolve(_ text: String?, environment: [String: String], plannedCount: Int) throws(Problem) -> PartitionSpec {
        var index: Int
        var count = plannedCount
        if let text {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let i = Int(parts[0]), i >= 0 else { throw .malformed(text) }
            index = i
            if parts.count == 2 {
                guard let n = Int(parts[1]), n > 0 else { throw .malformed(text) }
                guard n == plannedCount else { throw .countDiffersFromPlan(given: n, planned: plannedCount) }
                count = n
            }
        } else {
            guard let value = environment[indexVariable], let i = Int(value.trimmingCharacters(in: .whitespaces)), i >= 0 else {
                throw .noIndex
            }
            index = i
        }
        guard index < count else { throw .indexOutOfRange(index: index, count: count) }
        return PartitionSpec(index: index, count: count)
    }

    /// The number of partitions `etl plan --partitions` takes.
    public static func checkCount(_ count: Int) throws(Problem) {
        guard (1...maximumCount).contains(count) else { throw .countOutOfRange(count) }
    }
}

/// Run ids name a directory of the store (and, in object storage, a key prefix), and appear in Job manifests.
public enum RunIdentifier {
    /// Letters, digits, `.`, `_` and `-`, not starting with `.`, at most 100 characters.
    public static func problem(_ id: String) -> String? {
        let allowed = id.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
        guard !id.isEmpty, id.count <= 100, allowed, !id.hasPrefix(".") else {
            return "run id '\(id)' must be 1 to 100 letters, digits, '.', '_' or '-', not starting with '.'"
        }
        return nil
    }

    /// A new id: the UTC time and a random suffix, so ids sort by when they were planned.
    public static func make(at date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return "\(formatter.string(from: date))-\(UUID().uuidString.prefix(8).lowercased())"
    }
}

import Foundation
