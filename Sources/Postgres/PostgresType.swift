/// A column's type as the server reports it: its OID and its `pg_type.typname` ("int8", "_text", "timestamptz" …).
///
/// Domains never appear here: the server reports a domain column as its base type.
public struct PostgresType: Sendable, Hashable, CustomStringConvertible {
    public var oid: UInt32
    public var name: String

    public init(oid: UInt32, name: String) {
        self.oid = oid
        self.name = name
    }

    /// Whether values of this type decode into a ``PostgresValue`` (`etl validate` rejects queries where this is
    /// false before running them).
    public var isSupported: Bool { ValueFormat(self) != nil }

    public var description: String { "\(name) (oid \(oid))" }

    /// Names of the built-in types this module decodes. Other types are named by asking the server, since their
    /// OIDs (extensions, enums, composites) differ between databases.
    static let builtinNames: [UInt32: String] = [
        16: "bool", 17: "bytea", 19: "name", 20: "int8", 21: "int2", 23: "int4", 25: "text", 114: "json",
        700: "float4", 701: "float8", 1042: "bpchar", 1043: "varchar", 1082: "date", 1114: "timestamp",
        1184: "timestamptz", 1700: "numeric", 2950: "uuid", 3802: "jsonb",
        1003: "_name", 1009: "_text", 1014: "_bpchar", 1015: "_varchar",
        1005: "_int2", 1007: "_int4", 1016: "_int8",
    ]

    /// OIDs below this are assigned at initdb and mean the same type in every database.
    static let firstNormalObjectID: UInt32 = 16384
}

/// How a column's binary values are laid out, derived once per result rather than per value.
enum ValueFormat: Hashable {
    case bool, int16, int32, int64, float32, float64, numeric, text, bytea, timestamp, date, json, jsonb, uuid
    case textArray(elementOID: UInt32)
    case integerArray(elementOID: UInt32)

    init?(_ type: PostgresType) {
        switch type.oid {
        case 16: self = .bool
        case 17: self = .bytea
        case 19, 25, 1042, 1043: self = .text
        case 20: self = .int64
        case 21: self = .int16
        case 23: self = .int32
        case 114: self = .json
        case 700: self = .float32
        case 701: self = .float64
        case 1082: self = .date
        case 1114, 1184: self = .timestamp
        case 1700: self = .numeric
        case 2950: self = .uuid
        case 3802: self = .jsonb
        case 1003: self = .textArray(elementOID: 19)
        case 1009: self = .textArray(elementOID: 25)
        case 1014: self = .textArray(elementOID: 1042)
        case 1015: self = .textArray(elementOID: 1043)
        case 1005: self = .integerArray(elementOID: 21)
        case 1007: self = .integerArray(elementOID: 23)
        case 1016: self = .integerArray(elementOID: 20)
        default:
            // citext is an extension type with a database-specific OID; its binary form is the text's UTF-8 bytes.
            guard type.oid >= PostgresType.firstNormalObjectID, type.name == "citext" else { return nil }
            self = .text
        }
    }
}
