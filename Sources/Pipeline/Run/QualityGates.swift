import Dataset
import Foundation
import MDS

/// The `expect:` section of a pipeline file: bounds a new version must meet to be published. A nightly run is
/// unattended, so a source that suddenly sends a tenth of the usual rows, mostly garbage, a new label or one user's
/// flood must stop the run (exit 8) instead of quietly becoming tomorrow's training set.
public struct Expectations: Sendable {
    /// At least this many source rows read (samples + quarantined).
    public var minNewRows: Int?
    /// At most this share of the rows read quarantined (0…1).
    public var maxQuarantineRatio: Double?
    /// Output column → the values its new samples may hold. For a `label_map` column the list names labels (the
    /// mapped values are translated back); for a plain str/int column it names the values themselves.
    public var allowedLabels: [String: [String]] = [:]
    /// No split holds more than this share of the new samples (0…1).
    public var maxSplitShare: Double?
    /// Where the section is, for errors found only at run time (e.g. a column whose inferred encoding is bytes).
    public var location: SourceLocation?

    public init() {}

    public var isEmpty: Bool { minNewRows == nil && maxQuarantineRatio == nil && allowedLabels.isEmpty && maxSplitShare == nil }
}

/// One bound a run broke, with the figure that broke it.
public struct GateViolation: Sendable, Equatable, CustomStringConvertible {
    public var bound: String
    public var message: String
    public var description: String { "\(bound): \(message)" }
}

/// What the gates look at, gathered from the built version (pure input, so the decisions are unit-tested).
public struct GateFacts: Sendable, Equatable {
    public var rowsRead: Int
    public var quarantined: Int
    /// New samples per split.
    public var newSamples: [String: Int]
    /// For each `allowed_labels` column: value text → count in the new samples.
    public var valueCounts: [String: [String: Int]]

    public init(rowsRead: Int, quarantined: Int, newSamples: [String: Int], valueCounts: [String: [String: Int]] = [:]) {
        self.rowsRead = rowsRead
        self.quarantined = quarantined
        self.newSamples = newSamples
        self.valueCounts = valueCounts
    }
}

/// A version that broke a bound of `expect:`; nothing was published and the cursor stays.
public struct QualityGateError: Error, CategorizedFailure, CustomStringConvertible {
    public var violations: [GateViolation]
    public var pipelinePath: String
    public var category: FailureCategory { .qualityGate }
    /// Rerunning reads the same rows and fails the same way; someone has to look at the data or the bounds.
    public var isRetryable: Bool { false }
    public var failureMessage: String {
        let lines = violations.map { "  expect.\($0.bound): \($0.message)" }.joined(separator: "\n")
        return "a quality gate failed (\(pipelinePath)); nothing was published and the cursor did not move:\n\(lines)"
    }
    public var description: String { failureMessage }
}

public enum QualityGates {
    /// The decisions: every bound that the facts break, in a fixed order. `labelNames` maps, for a label_map column,
    /// a mapped value's text back to its label(s), so `allowed_labels` can name labels.
    public static func evaluate(_ expect: Expectations, facts: GateFacts, labelNames: [String: [String: [String]]] = [:]) -> [GateViolation] {
        var violations: [GateViolation] = []
        if let minimum = expect.minNewRows, facts.rowsRead < minimum {
            violations.append(GateViolation(bound: "min_new_rows", message: "\(facts.rowsRead) new rows read, at least \(minimum) expected"))
        }
        if let maximum = expect.maxQuarantineRatio, facts.rowsRead > 0 {
            let ratio = Double(facts.quarantined) / Double(facts.rowsRead)
            if ratio > maximum {
                violations.append(GateViolation(bound: "max_quarantine_ratio",
                                                message: "\(facts.quarantined) of \(facts.rowsRead) rows quarantined (\(percent(ratio))), at most \(percent(maximum)) allowed"))
            }
        }
        for column in expect.allowedLabels.keys.sorted() {
            let allowed = Set(expect.allowedLabels[column]!)
            let names = labelNames[column] ?? [:]
            var unexpected: [(String, Int)] = []
            for (value, count) in facts.valueCounts[column] ?? [:] {
                let labels = names[value] ?? []
                if allowed.contains(value) || labels.contains(where: allowed.contains) { continue }
                let shown = labels.isEmpty ? "'\(value)'" : "'\(labels.sorted().joined(separator: "'/'"))' (\(value))"
                unexpected.append((shown, count))
            }
            if !unexpected.isEmpty {
                let list = unexpected.sorted { ($0.1, $1.0) > ($1.1, $0.0) }.map { "\($0.0) in \($0.1) sample\($0.1 == 1 ? "" : "s")" }
                violations.append(GateViolation(bound: "allowed_labels.\(column)",
                                                message: "values outside [\(allowed.sorted().joined(separator: ", "))]: \(list.joined(separator: ", "))"))
            }
        }
        if let maximum = expect.maxSplitShare {
            let total = facts.newSamples.values.reduce(0, +)
            if total > 0 {
                for split in facts.newSamples.keys.sorted() {
                    let share = Double(facts.newSamples[split]!) / Double(total)
                    if share > maximum {
                        violations.append(GateViolation(bound: "max_split_share",
                                                        message: "split '\(split)' holds \(facts.newSamples[split]!) of \(total) new samples (\(percent(share))), at most \(percent(maximum)) allowed"))
                    }
                }
            }
        }
        return violations
    }

    /// Checks a built, staged version before its commit: throws `QualityGateError` naming every broken bound.
    /// Reads only this run's new shards (from the staged work directory), and only when `allowed_labels` needs values.
    public static func check(_ config: PipelineConfig, built: VersionBuilder.Version, progress: RunProgress,
                             staged: any StagedVersion) throws {
        let expect = config.expect
        guard !expect.isEmpty else { return }
        let manifest = built.manifest
        var facts = GateFacts(rowsRead: progress.rowsRead, quarantined: progress.quarantined,
                              newSamples: manifest.splits.mapValues(\.newSamples))
        var labelNames: [String: [String: [String]]] = [:]
        if !expect.allowedLabels.isEmpty {
            let at = expect.location ?? SourceLocation(file: config.path, line: 1, column: 1)
            for column in expect.allowedLabels.keys {
                // Decoding checked the column exists and is plain or label_map; only the inferred encoding is left.
                let encoding = manifest.columns.first { $0.name == column }?.encoding ?? "?"
                guard encoding == "str" || encoding.hasPrefix("int") || encoding.hasPrefix("uint") else {
                    throw PipelineConfigError(issues: [ConfigIssue(location: at, message: "expect.allowed_labels.\(column): the column is encoded as \(encoding); only str and integer columns can be checked")])
                }
                if let map = config.columns.first(where: { $0.name == column })?.transform as? LabelMapTransform {
                    var names: [String: [String]] = [:]
                    for (label, value) in map.values { names[canonical(value), default: []].append(label) }
                    labelNames[column] = names
                }
            }
            facts.valueCounts = try valueCounts(of: Set(expect.allowedLabels.keys), built: built, directory: staged.workDirectory)
        }
        let violations = evaluate(expect, facts: facts, labelNames: labelNames)
        if !violations.isEmpty { throw QualityGateError(violations: violations, pipelinePath: config.path) }
    }

    /// Counts the values of `columns` in the shards this run wrote (the parent's shards are not read again).
    static func valueCounts(of columns: Set<String>, built: VersionBuilder.Version, directory: String) throws -> [String: [String: Int]] {
        var counts: [String: [String: Int]] = Dictionary(uniqueKeysWithValues: columns.map { ($0, [:]) })
        let version = built.manifest.version
        for (split, info) in built.manifest.splits {
            let newShards = Set(info.shards.filter { $0.createdBy == version }.map(\.basename))
            guard !newShards.isEmpty, let index = built.indexes[split] else { continue }
            let reader = MDSReader(directory: URL(fileURLWithPath: "\(directory)/\(split)", isDirectory: true),
                                   index: MDSIndex(shards: index.shards.filter { newShards.contains($0.storedFile.basename) }))
            try reader.forEachSample { sample in
                for column in columns {
                    let text: String
                    switch sample[column] {
                    case .string(let value)?: text = value
                    case .int(let value)?: text = String(value)
                    case .uint(let value)?: text = String(value)
                    default: continue
                    }
                    counts[column]![text, default: 0] += 1
                }
            }
        }
        return counts
    }

    /// "007" and "7" are the same integer label value.
    private static func canonical(_ text: String) -> String { Int64(text).map(String.init) ?? text }

    private static func percent(_ ratio: Double) -> String { String(format: "%.1f%%", ratio * 100) }
}

extension Expectations {
    /// Decodes `expect:`; `columns` are the pipeline's output columns, so a bound on a missing or media column is an
    /// error at load time, with its line.
    static func decode(_ node: ConfigNode, columns: [ColumnConfig], issues: inout ConfigIssues) -> Expectations {
        var expect = Expectations()
        expect.location = node.location
        guard var reader = MappingReader(node, issues: &issues) else { return expect }
        expect.minNewRows = reader.int("min_new_rows", range: 0...Int.max, issues: &issues)
        expect.maxQuarantineRatio = reader.double("max_quarantine_ratio", range: 0...1, issues: &issues)
        expect.maxSplitShare = reader.double("max_split_share", range: 0...1, issues: &issues)
        if let labels = reader.node("allowed_labels") {
            if let pairs = labels.mapping {
                for pair in pairs {
                    guard let values = pair.value.sequence?.compactMap(\.scalarString), values.count == pair.value.sequence?.count, !values.isEmpty else {
                        issues.add("'expect.allowed_labels.\(pair.key)' must be a non-empty list of values", at: pair.value.location)
                        continue
                    }
                    if let column = columns.first(where: { $0.name == pair.key }) {
                        if !(column.transform is ValueTransform || column.transform is LabelMapTransform) {
                            issues.add("'expect.allowed_labels.\(pair.key)': column '\(pair.key)' is a \(type(of: column.transform).key) column; only plain and label_map columns hold labels", at: pair.keyLocation)
                        }
                    } else {
                        let hint = suggestion(for: pair.key, among: columns.map(\.name)).map { " (did you mean '\($0)'?)" } ?? ""
                        issues.add("'expect.allowed_labels' names column '\(pair.key)', which is not an output column\(hint)", at: pair.keyLocation)
                    }
                    expect.allowedLabels[pair.key] = values
                }
            } else {
                issues.add("'expect.allowed_labels' must be a mapping of column to a list of values, e.g. {label: [good, bad]}", at: labels.location)
            }
        }
        reader.reportUnknownKeys(issues: &issues)
        return expect
    }
}
