/// Element type of an `ndarray` value, named as NumPy names it.
public enum NDType: String, Sendable, CaseIterable, Hashable {
    case uint8, int8, uint16, int16, uint32, int32, uint64, int64, float16, float32, float64

    public var byteWidth: Int {
        switch self {
        case .uint8, .int8: 1
        case .uint16, .int16, .float16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        }
    }

    /// The byte a variable-dtype `ndarray` column stores in front of each value
    /// (mosaicml's table: low bits = signedness/float, high bits = width in bits).
    var mdsCode: UInt8 {
        switch self {
        case .uint8: 8
        case .int8: 9
        case .uint16: 16
        case .int16: 17
        case .float16: 18
        case .uint32: 32
        case .int32: 33
        case .float32: 34
        case .uint64: 64
        case .int64: 65
        case .float64: 66
        }
    }

    init?(mdsCode: UInt8) {
        guard let type = NDType.allCases.first(where: { $0.mdsCode == mdsCode }) else { return nil }
        self = type
    }
}

/// A column encoding of mosaicml-streaming's MDS format.
///
/// Only the encodings that need no Python objects are here. mosaicml also has `pkl`, `pil`, `str_int`,
/// `str_float`, `str_decimal`, `jpeg_array`, `list[pil]`, `list[jpeg]` and `list[png]`; `init(parsing:)` rejects
/// them with a message saying so.
public enum MDSEncoding: Sendable, Hashable, CustomStringConvertible {
    case bytes
    case str
    /// mosaicml's `int`: a Python int stored as int64 (same bytes as `int64`, different name).
    case int
    case int8, int16, int32, int64
    case uint8, uint16, uint32, uint64
    case float16, float32, float64
    case json
    /// Already-encoded JPEG bytes (Python readers get a PIL image).
    case jpeg
    /// Already-encoded PNG bytes (Python readers get a PIL image).
    case png
    /// A NumPy array. With `dtype` nil the dtype is stored per value; with `shape` nil the shape is stored per value.
    /// A fixed `shape` requires a fixed `dtype` (the name `ndarray:<dtype>:<shape>` cannot say otherwise),
    /// and every dimension of it must be at least 1.
    case ndarray(dtype: NDType? = nil, shape: [Int]? = nil)

    static let scalarNames: [(String, MDSEncoding)] = [
        ("bytes", .bytes), ("str", .str), ("int", .int),
        ("int8", .int8), ("int16", .int16), ("int32", .int32), ("int64", .int64),
        ("uint8", .uint8), ("uint16", .uint16), ("uint32", .uint32), ("uint64", .uint64),
        ("float16", .float16), ("float32", .float32), ("float64", .float64),
        ("json", .json), ("jpeg", .jpeg), ("png", .png),
    ]

    static let unsupportedMosaicNames: Set<String> = [
        "pkl", "pil", "str_int", "str_float", "str_decimal", "jpeg_array", "jpegarray",
        "list[pil]", "list[jpeg]", "list[png]",
    ]

    /// Parses a name as mosaicml writes it in `column_encodings`: `int32`, `ndarray`, `ndarray:uint8`,
    /// `ndarray:float32:4`, `ndarray:uint8:2,3`.
    public init(parsing name: String) throws(ShardError) {
        if let match = Self.scalarNames.first(where: { $0.0 == name }) {
            self = match.1
            return
        }
        if Self.unsupportedMosaicNames.contains(name) {
            throw ShardError(
                .invalidEncoding,
                "MDS encoding '\(name)' needs Python objects and is not supported; use one of \(Self.supportedList)")
        }
        guard name == "ndarray" || name.hasPrefix("ndarray:") else {
            throw ShardError(.invalidEncoding, "unknown MDS encoding '\(name)'; use one of \(Self.supportedList)")
        }
        if name == "ndarray" {
            self = .ndarray()
            return
        }
        // mosaicml splits what follows "ndarray:" on ':' into at most [dtype, shape].
        let parts = name.dropFirst("ndarray:".count).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let dtype = NDType(rawValue: String(parts[0])) else {
            throw ShardError(
                .invalidEncoding,
                "invalid ndarray encoding '\(name)': expected ndarray, ndarray:<dtype> or ndarray:<dtype>:<d1,d2,...> "
                    + "with dtype one of \(NDType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard parts.count == 2 else {
            self = .ndarray(dtype: dtype)
            return
        }
        var shape: [Int] = []
        for text in parts[1].split(separator: ",", omittingEmptySubsequences: false) {
            guard let dim = Int(text.trimmingSpaces), dim >= 1 else {
                throw ShardError(
                    .invalidEncoding,
                    "invalid ndarray encoding '\(name)': every dimension of a fixed shape must be an integer >= 1")
            }
            shape.append(dim)
        }
        self = .ndarray(dtype: dtype, shape: shape)
    }

    static var supportedList: String {
        (scalarNames.map(\.0) + ["ndarray[:<dtype>[:<shape>]]"]).joined(separator: ", ")
    }

    /// The name written to index.json `column_encodings` and to the shard header.
    public var name: String {
        switch self {
        case .ndarray(let dtype, let shape):
            guard let dtype else { return "ndarray" }
            guard let shape else { return "ndarray:\(dtype.rawValue)" }
            return "ndarray:\(dtype.rawValue):" + shape.map(String.init).joined(separator: ",")
        default:
            return Self.scalarNames.first(where: { $0.1 == self })!.0
        }
    }

    public var description: String { name }

    /// The size of every value in bytes (index.json `column_sizes`), or nil when values vary in size and the
    /// sample stores a u32 length for them.
    public var fixedSize: Int? {
        switch self {
        case .bytes, .str, .json, .jpeg, .png: nil
        case .int, .int64, .uint64, .float64: 8
        case .int32, .uint32, .float32: 4
        case .int16, .uint16, .float16: 2
        case .int8, .uint8: 1
        case .ndarray(let dtype, let shape):
            if let dtype, let shape { shape.reduce(dtype.byteWidth, *) } else { nil }
        }
    }

    /// Why this encoding cannot be written, or nil when it can. Only hand-built `.ndarray` values can be
    /// invalid; `init(parsing:)` never produces one.
    var invalidReason: String? {
        guard case .ndarray(let dtype, let shape) = self, let shape else { return nil }
        if dtype == nil { return "a fixed ndarray shape needs a fixed dtype (ndarray:<dtype>:<shape>)" }
        if shape.isEmpty || shape.contains(where: { $0 < 1 }) {
            return "every dimension of a fixed ndarray shape must be >= 1"
        }
        var total = dtype!.byteWidth
        for dim in shape {
            let (product, overflow) = total.multipliedReportingOverflow(by: dim)
            if overflow || product > Int(UInt32.max) { return "fixed ndarray shape \(shape) is too large" }
            total = product
        }
        return nil
    }
}

extension MDSEncoding {
    /// Whether this is one of the scalar integer encodings (`int`, `int8`…`int64`, `uint8`…`uint64`).
    public var isInteger: Bool { integerBounds != nil }

    /// The one integer range check: whether `value` fits this integer encoding (false for every other encoding).
    /// The writer and the pipeline's conversions both ask here, so they can never disagree.
    public func holds(_ value: Int64) -> Bool {
        guard let bounds = integerBounds, value >= bounds.min else { return false }
        return bounds.max < 0 || value <= bounds.max
    }

    /// Whether `value` fits this integer encoding (false for every other encoding).
    public func holds(_ value: UInt64) -> Bool {
        guard let bounds = integerBounds else { return false }
        return bounds.max < 0 ? true : value <= UInt64(bounds.max)
    }

    /// Smallest value, and largest one as an Int64 (-1 standing for UInt64.max, which Int64 cannot hold).
    private var integerBounds: (min: Int64, max: Int64)? {
        switch self {
        case .int, .int64: (Int64.min, Int64.max)
        case .int32: (Int64(Int32.min), Int64(Int32.max))
        case .int16: (Int64(Int16.min), Int64(Int16.max))
        case .int8: (Int64(Int8.min), Int64(Int8.max))
        case .uint64: (0, -1)
        case .uint32: (0, Int64(UInt32.max))
        case .uint16: (0, Int64(UInt16.max))
        case .uint8: (0, Int64(UInt8.max))
        default: nil
        }
    }
}

extension Substring {
    /// Python's int() tolerates surrounding whitespace, and mosaicml parses shapes with it.
    var trimmingSpaces: Substring {
        var text = self
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return text
    }
}

/// One column of an MDS dataset.
public struct MDSColumn: Sendable, Hashable {
    public var name: String
    public var encoding: MDSEncoding

    public init(name: String, encoding: MDSEncoding) {
        self.name = name
        self.encoding = encoding
    }

    /// Parses the encoding name, e.g. `MDSColumn(name: "vec", encodingName: "ndarray:float32:4")`.
    public init(name: String, encodingName: String) throws(ShardError) {
        self.init(name: name, encoding: try MDSEncoding(parsing: encodingName))
    }
}

extension String {
    /// Python's `sorted()` on str: by Unicode code point, without Swift's canonical-equivalence rules, so the
    /// column order matches the one mosaicml writes.
    public static func codePointPrecedes(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) { $0.value < $1.value }
    }
}
