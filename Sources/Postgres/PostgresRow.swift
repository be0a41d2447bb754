public struct PostgresColumn: Sendable, Hashable {
    public var name: String
    public var type: PostgresType

    public init(name: String, type: PostgresType) {
        self.name = name
        self.type = type
    }
}

public struct PostgresRow: Sendable {
    public let columns: [PostgresColumn]
    public let values: [PostgresValue]

    public init(columns: [PostgresColumn], values: [PostgresValue]) {
        precondition(columns.count == values.count, "a row needs one value per column")
        self.columns = columns
        self.values = values
    }

    /// The value of the first column with this name (SQL allows duplicates; alias them to reach the others), or nil
    /// when there is no such column.
    public subscript(name: String) -> PostgresValue? {
        columns.firstIndex(where: { $0.name == name }).map { values[$0] }
    }
}

public struct PostgresResultSet: Sendable {
    public let columns: [PostgresColumn]
    public let rows: [PostgresRow]

    public init(columns: [PostgresColumn], rows: [PostgresRow]) {
        self.columns = columns
        self.rows = rows
    }
}
