import Foundation
import Yams

/// A place in a pipeline file, so every message can point the user at the line to fix.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// One problem found in a pipeline file.
public struct ConfigIssue: Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public var description: String { "\(location): error: \(message)" }
}

/// Collects every problem instead of stopping at the first, so one `etl validate` shows the user all of them.
public struct ConfigIssues: Sendable {
    public private(set) var all: [ConfigIssue] = []

    public init() {}

    mutating func add(_ message: String, at location: SourceLocation) {
        all.append(ConfigIssue(location: location, message: message))
    }

    public var isEmpty: Bool { all.isEmpty }
}

/// A YAML node with the file it came from and a dotted path, for located error messages.
struct ConfigNode {
    let node: Node
    let path: String
    let file: String
    /// Where the key naming this node stands, if it is a mapping value: "missing key" errors point there.
    var keyLocation: SourceLocation?

    var location: SourceLocation {
        let mark = node.mark
        return SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    var isNull: Bool {
        if case .scalar(let scalar) = node { return scalar.tag.description == Tag.Name.null.rawValue || (scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)) }
        return false
    }

    var scalarString: String? {
        if case .scalar(let scalar) = node { return scalar.string }
        return nil
    }

    var mapping: [(key: String, keyLocation: SourceLocation, value: ConfigNode)]? {
        guard case .mapping(let mapping) = node else { return nil }
        return mapping.map { pair in
            let key = pair.key.string ?? "\(pair.key)"
            let keyNode = ConfigNode(node: pair.key, path: path, file: file)
            let value = ConfigNode(node: pair.value, path: path.isEmpty ? key : "\(path).\(key)", file: file, keyLocation: keyNode.location)
            return (key, keyNode.location, value)
        }
    }

    var sequence: [ConfigNode]? {
        guard case .sequence(let sequence) = node else { return nil }
        return sequence.enumerated().map { ConfigNode(node: $1, path: "\(path)[\($0)]", file: file) }
    }

    var kindDescription: String {
        switch node {
        case .scalar: return "a scalar"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }
}

/// Reads the keys of one mapping, reporting unknown keys, missing required keys and wrong types, all located.
struct MappingReader {
    let node: ConfigNode
    private(set) var entries: [String: (keyLocation: SourceLocation, value: ConfigNode)] = [:]
    private var consumed: Set<String> = []

    init?(_ node: ConfigNode, issues: inout ConfigIssues) {
        self.node = node
        guard let pairs = node.mapping else {
            issues.add("'\(node.path.isEmpty ? "document" : node.path)' must be a mapping, found \(node.kindDescription)", at: node.location)
            return nil
        }
        for pair in pairs {
            if entries[pair.key] != nil {
                issues.add("duplicate key '\(pair.key)'", at: pair.keyLocation)
            }
            entries[pair.key] = (pair.keyLocation, pair.value)
        }
    }

    var keys: [String] { Array(entries.keys) }

    func has(_ key: String) -> Bool { entries[key] != nil }

    mutating func node(_ key: String) -> ConfigNode? {
        consumed.insert(key)
        guard let value = entries[key]?.value, !value.isNull else { return nil }
        return value
    }

    mutating func required(_ key: String, issues: inout ConfigIssues) -> ConfigNode? {
        let value = node(key)
        if value == nil {
            let at = entries[key]?.keyLocation ?? node.keyLocation ?? node.location
            issues.add("missing required key '\(qualified(key))'", at: at)
        }
        return value
    }

    mutating func string(_ key: String, required: Bool = false, issues: inout ConfigIssues) -> (String, SourceLocation)? {
        guard let value = required ? self.required(key, issues: &issues) : node(key) else { return nil }
        guard let text = value.scalarString else {
            issues.add("'\(qualified(key))' must be a string, found \(value.kindDescription)", at: value.location)
            return nil
        }
        return (text, value.location)
    }

    mutating func int(_ key: String, range: ClosedRange<Int>, issues: inout ConfigIssues) -> Int? {
        guard let value = node(key) else { return nil }
        guard let text = value.scalarString, let number = Int(text.replacingOccurrences(of: "_", with: "")) else {
            issues.add("'\(qualified(key))' must be a whole number, found '\(value.scalarString ?? value.kindDescription)'", at: value.location)
            return nil
        }
        guard range.contains(number) else {
            issues.add("'\(qualified(key))' must be between \(range.lowerBound) and \(range.upperBound), found \(number)", at: value.location)
            return nil
        }
        return number
    }

    mutating func double(_ key: String, range: ClosedRange<Double>, issues: inout ConfigIssues) -> Double? {
        guard let value = node(key) else { return nil }
        guard let text = value.scalarString, let number = Double(text), number.isFinite else {
            issues.add("'\(qualified(key))' must be a number, found '\(value.scalarString ?? value.kindDescription)'", at: value.location)
            return nil
        }
        guard range.contains(number) else {
            issues.add("'\(qualified(key))' must be between \(range.lowerBound) and \(range.upperBound), found \(text)", at: value.location)
            return nil
        }
        return number
    }

    mutating func bool(_ key: String, issues: inout ConfigIssues) -> Bool? {
        guard let value = node(key) else { return nil }
        switch value.scalarString?.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            issues.add("'\(qualified(key))' must be true or false, found '\(value.scalarString ?? value.kindDescription)'", at: value.location)
            return nil
        }
    }

    /// A value from a fixed set, e.g. `resize: pad|crop|stretch`.
    mutating func choice<T: RawRepresentable>(_ key: String, _ type: T.Type, issues: inout ConfigIssues) -> T?
    where T: CaseIterable, T.RawValue == String {
        choice(key, among: Array(T.allCases), issues: &issues)
    }

    mutating func choice<T: RawRepresentable>(_ key: String, among allowedValues: [T], issues: inout ConfigIssues) -> T?
    where T.RawValue == String {
        guard let (text, location) = string(key, issues: &issues) else { return nil }
        guard let value = allowedValues.first(where: { $0.rawValue == text }) else {
            let allowed = allowedValues.map(\.rawValue).joined(separator: ", ")
            issues.add("'\(qualified(key))' must be one of \(allowed), found '\(text)'", at: location)
            return nil
        }
        return value
    }

    /// Reports every key that no reader asked for: a misspelt key must never be silently ignored.
    func reportUnknownKeys(issues: inout ConfigIssues, allowedExtra: [String] = []) {
        let known = consumed.union(allowedExtra).sorted()
        let skipped = consumed.union(allowedExtra)
        for (key, entry) in entries.sorted(by: { $0.value.keyLocation.line < $1.value.keyLocation.line }) where !skipped.contains(key) {
            let hint = suggestion(for: key, among: known).map { " (did you mean '\($0)'?)" } ?? " (known keys: \(known.joined(separator: ", ")))"
            issues.add("unknown key '\(qualified(key))'\(hint)", at: entry.keyLocation)
        }
    }

    func qualified(_ key: String) -> String { node.path.isEmpty ? key : "\(node.path).\(key)" }
}

/// The closest known key by edit distance, to turn a typo into a one-glance fix.
func suggestion(for word: String, among candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var current = [i + 1]
            for (j, cb) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
    let scored = candidates.map { ($0, distance(Array(word), Array($0))) }.filter { $0.1 <= max(2, word.count / 3) }
    return scored.min { $0.1 < $1.1 }?.0
}
