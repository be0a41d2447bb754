import Foundation

/// The Prometheus text exposition format (version 0.0.4), as node_exporter's textfile collector reads it: for each
/// metric family a `# HELP` and a `# TYPE` line, then one `name{label="value",…} number` line per sample.
///
/// Ours rather than swift-prometheus: a run is one short process that writes its figures once, at its end, to a file.
/// swift-prometheus (which brings swift-atomics and swift-metrics) is built for a long-lived registry scraped over
/// HTTP; here the whole job is ~60 lines of formatting that the tests can hold byte for byte.
public struct PrometheusText: Sendable {
    public enum Kind: String, Sendable { case gauge, counter }

    private var families: [(name: String, help: String, kind: Kind, samples: [(labels: [(String, String)], value: Double)])] = []

    public init() {}

    /// Adds a sample to family `name` (created on first use, in the order families are first added).
    public mutating func add(_ name: String, help: String, kind: Kind = .gauge, labels: [(String, String)] = [], _ value: Double) {
        if let index = families.firstIndex(where: { $0.name == name }) {
            families[index].samples.append((labels, value))
        } else {
            families.append((name, help, kind, [(labels, value)]))
        }
    }

    public var text: String {
        var out = ""
        for family in families {
            out += "# HELP \(family.name) \(Self.escapeHelp(family.help))\n"
            out += "# TYPE \(family.name) \(family.kind.rawValue)\n"
            for sample in family.samples {
                out += family.name
                if !sample.labels.isEmpty {
                    out += "{" + sample.labels.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
                }
                out += " \(Self.format(sample.value))\n"
            }
        }
        return out
    }

    /// Integers without a fraction (counts stay exact and readable), others with the shortest exact form.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// Label values escape backslash, double quote and newline.
    static func escapeLabel(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    /// HELP text escapes backslash and newline.
    static func escapeHelp(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }
}
