/// `dedupe:` — a sample whose value of `column` (an output column: a label, a text, or media bytes such as a
/// passthrough or thumbnail column, compared by a 16-byte SHA-256 of the value) was already published in the
/// dataset's lineage, or earlier in the same run, is not written again; it is counted in the manifest
/// (`counts.deduplicated`) and the run's events. Written `dedupe: {column: NAME}` or `dedupe: NAME`.
public struct DedupeConfig: Sendable {
    public var column: String
    public var location: SourceLocation

    static func decode(_ node: ConfigNode, columns: [ColumnConfig], issues: inout ConfigIssues) -> DedupeConfig? {
        var found: (String, SourceLocation)?
        if let text = node.scalarString {
            found = (text, node.location)
        } else if node.mapping != nil, var reader = MappingReader(node, issues: &issues) {
            found = reader.string("column", required: true, issues: &issues)
            reader.reportUnknownKeys(issues: &issues)
        } else {
            issues.add("'dedupe' must name an output column: dedupe: {column: NAME}", at: node.location)
        }
        guard let (column, location) = found else { return nil }
        if column.isEmpty || column.hasPrefix("__") {
            // __key__ would drop a second sample of a key: that is source.change_column's job (replace, not skip).
            issues.add("dedupe.column must be an output column, not '\(column)' (to replace changed rows by key, use source.change_column)", at: location)
            return nil
        }
        // Transforms may produce several columns named after theirs (probe: <name>_<field>): checked against the
        // query's result when the run plans its columns; here only a name that matches no column entry at all.
        if !columns.isEmpty && !columns.contains(where: { column == $0.name || column.hasPrefix("\($0.name)_") }) {
            let names = columns.map(\.name)
            let hint = suggestion(for: column, among: names).map { " (did you mean '\($0)'?)" } ?? ""
            issues.add("dedupe.column '\(column)' is not one of the output columns\(hint)", at: location)
            return nil
        }
        return DedupeConfig(column: column, location: location)
    }
}
