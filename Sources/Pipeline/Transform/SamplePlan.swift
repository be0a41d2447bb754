import Postgres
import MDS

/// The pipeline file checked against the query's real result columns: which source column feeds which output,
/// with which types and MDS encodings. Built before any row is read, so type problems fail fast and name the column.
struct SamplePlan: Sendable {
    struct Output: Sendable {
        var config: ColumnConfig
        var sourceIndex: Int
        var sourceType: SourceType
        var columns: [MDSColumn]
    }

    static let keyColumnName = "__key__"

    var outputs: [Output]
    var keyIndex: Int
    var cursorIndex: Int
    var cursorType: String
    var groupIndex: Int?
    /// Every MDS column of a sample, `__key__` included.
    var mdsColumns: [MDSColumn]
    /// The source columns a run fetches, in the order of the indexes above, and their types.
    var selectedColumns: [String]
    var selectedTypes: [PostgresType]

    init(config: PipelineConfig, columns: [PostgresColumn]) throws(PipelineConfigError) {
        var issues = ConfigIssues()
        let names = columns.map(\.name)
        let available = names.joined(separator: ", ")
        func index(of name: String, role: String, at location: SourceLocation) -> Int? {
            if let i = names.firstIndex(of: name) { return i }
            let hint = suggestion(for: name, among: names).map { " (did you mean '\($0)'?)" } ?? ""
            issues.add("\(role) '\(name)' is not a column of the query's result\(hint); it returns: \(available)", at: location)
            return nil
        }
        let source = config.source
        let keyIndex = index(of: source.keyColumn, role: "key column", at: source.keyLocation)
        let cursorIndex = index(of: source.cursorColumn, role: "cursor column", at: source.cursorLocation)
        if let cursorIndex, !cursorTypes.contains(columns[cursorIndex].type.name) {
            issues.add("cursor column '\(source.cursorColumn)' has type \(columns[cursorIndex].type.name); a cursor must be one of \(cursorTypes.sorted().joined(separator: ", "))", at: source.cursorLocation)
        }
        if let keyIndex, SourceType(columns[keyIndex].type) == nil || [.bytea, .json].contains(SourceType(columns[keyIndex].type)!) {
            issues.add("key column '\(source.keyColumn)' has type \(columns[keyIndex].type.name); a key must be a number, text, uuid, date or timestamp", at: source.keyLocation)
        }
        var groupIndex: Int?
        if let group = config.split.groupColumn {
            groupIndex = index(of: group, role: "split group column", at: config.split.groupLocation ?? source.queryLocation)
        }

        var outputs: [Output] = []
        var mdsColumns = [MDSColumn(name: Self.keyColumnName, encoding: .str)]
        var produced: [String: SourceLocation] = [:]
        for column in config.columns {
            for extra in column.transform.extraSourceColumns {
                _ = index(of: extra, role: "column", at: column.location)
            }
            guard let i = index(of: column.from, role: "source column", at: column.fromLocation) else { continue }
            let pgType = columns[i].type
            guard let sourceType = SourceType(pgType) else {
                issues.add("column '\(column.from)' has PostgreSQL type \(pgType.name), which etl cannot map to an MDS encoding; cast it in the query (e.g. \(column.from)::text)", at: column.fromLocation)
                continue
            }
            switch column.transform.outputColumns(name: column.name, sourceType: sourceType) {
            case .failure(let problem):
                issues.add("column '\(column.name)' (from '\(column.from)', \(pgType.name)): \(problem.message)", at: column.location)
            case .success(let produces):
                for mds in produces {
                    if let first = produced[mds.name] {
                        issues.add("output column '\(mds.name)' is produced twice (first at line \(first.line))", at: column.location)
                    }
                    produced[mds.name] = column.location
                }
                mdsColumns += produces
                outputs.append(Output(config: column, sourceIndex: i, sourceType: sourceType, columns: produces))
            }
        }
        guard issues.isEmpty, let keyIndex, let cursorIndex else { throw PipelineConfigError(issues: issues.all) }
        // Indexes so far point into the query's full result; a run fetches only the columns used.
        var selected: [String] = []
        func position(_ index: Int) -> Int {
            let name = names[index]
            if let existing = selected.firstIndex(of: name) { return existing }
            selected.append(name)
            return selected.count - 1
        }
        self.keyIndex = position(keyIndex)
        self.cursorIndex = position(cursorIndex)
        self.cursorType = columns[cursorIndex].type.name
        self.groupIndex = groupIndex.map(position)
        self.outputs = outputs.map { output in
            var output = output
            output.sourceIndex = position(output.sourceIndex)
            return output
        }
        for output in config.columns {
            for extra in output.transform.extraSourceColumns { _ = names.firstIndex(of: extra).map(position) }
        }
        self.selectedColumns = selected
        self.selectedTypes = selected.map { name in columns[names.firstIndex(of: name)!].type }
        // The order MDS stores them in (code points, as mosaicml's Python sort), so a sample's values need no reordering.
        self.mdsColumns = mdsColumns.sorted { String.codePointPrecedes($0.name, $1.name) }
    }
}
