import Postgres
import MDS

/// Maps a label's text (e.g. a user's "wrong_text" flag) to the value a trainer wants (e.g. a class id).
/// An unmapped label takes `default`, or quarantines the row so a new label never slips in silently.
struct LabelMapTransform: SingleValueTransform {
    static let key = "label_map"

    var values: [String: String]
    var defaultText: String?
    var encoding: MDSEncoding
    /// `values` and `default` converted once, at load time, so a row costs one dictionary lookup and no parsing.
    /// Empty when a value does not fit `encoding` (reported by `outputColumns`, which stops the run before any row).
    private var mapped: [String: MDSValue] = [:]
    private var mappedDefault: MDSValue?

    init(values: [String: String], defaultText: String?, encoding: MDSEncoding) {
        self.values = values
        self.defaultText = defaultText
        self.encoding = encoding
        if conversionProblem == nil {
            for (label, text) in values { mapped[label] = try? convertText(text, to: encoding) }
            mappedDefault = defaultText.flatMap { try? convertText($0, to: encoding) }
        }
    }

    static func parse(_ options: ConfigNode, column: String, issues: inout ConfigIssues) -> LabelMapTransform? {
        guard var reader = MappingReader(options, issues: &issues) else { return nil }
        var values: [String: String] = [:]
        if let node = reader.required("values", issues: &issues) {
            if let pairs = node.mapping {
                for pair in pairs {
                    guard let text = pair.value.scalarString else {
                        issues.add("label '\(pair.key)' must map to a scalar", at: pair.value.location)
                        continue
                    }
                    values[pair.key] = text
                }
                if pairs.isEmpty { issues.add("'\(node.path)' must map at least one label", at: node.location) }
            } else {
                issues.add("'\(node.path)' must be a mapping of label to value", at: node.location)
            }
        }
        let defaultText = reader.string("default", issues: &issues)?.0
        let allIntegers = values.values.allSatisfy { Int64($0) != nil } && (defaultText.map { Int64($0) != nil } ?? true)
        var encoding: MDSEncoding = allIntegers ? .int64 : .str
        if let (text, location) = reader.string("encoding", issues: &issues) {
            if let parsed = try? MDSEncoding(parsing: text), !parsed.isNDArray {
                encoding = parsed
            } else {
                issues.add("'\(options.path).encoding' must be a scalar MDS encoding such as int32 or str, found '\(text)'", at: location)
            }
        }
        reader.reportUnknownKeys(issues: &issues)
        return LabelMapTransform(values: values, defaultText: defaultText, encoding: encoding)
    }

    /// The first mapped value (or the default) that does not fit `encoding`, with why.
    private var conversionProblem: String? {
        for text in values.values.sorted() + [defaultText].compactMap({ $0 }) {
            do { _ = try convertText(text, to: encoding) } catch {
                return "mapped value '\(text)' does not fit encoding \(encoding.name): \(error.message)"
            }
        }
        return nil
    }

    func outputColumns(name: String, sourceType: SourceType) -> Result<[MDSColumn], TransformTypeError> {
        guard [.text, .int16, .int32, .int64, .bool].contains(sourceType) else {
            return .failure(TransformTypeError(message: "label_map reads text or integer labels, not \(sourceType.rawValue)"))
        }
        if let conversionProblem { return .failure(TransformTypeError(message: conversionProblem)) }
        return .success([MDSColumn(name: name, encoding: encoding)])
    }

    func value(_ value: PostgresValue, sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) -> MDSValue {
        let label: String?
        switch value {
        case .text(let s): label = s
        case .int16(let v): label = String(v)
        case .int32(let v): label = String(v)
        case .int64(let v): label = String(v)
        case .bool(let b): label = b ? "true" : "false"
        default: label = nil
        }
        guard let mapped = label.flatMap({ mapped[$0] }) ?? mappedDefault else {
            throw SampleRejection(reason: .unmappedLabel, message: "label \(label.map { "'\($0)'" } ?? "NULL") of column '\(name)' is not in label_map.values")
        }
        return mapped
    }
}

private extension MDSEncoding {
    var isNDArray: Bool {
        if case .ndarray = self { return true }
        return false
    }
}
