/// A NumPy-style array: element type, shape and the raw element bytes (little-endian, C order), which is
/// exactly what MDS stores, so writing and reading never convert elements.
public struct NDArray: Sendable, Equatable {
    public var dtype: NDType
    public var shape: [Int]
    public var data: [UInt8]

    public init(dtype: NDType, shape: [Int], data: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }

    /// The number of elements the shape describes (nil if a dimension is negative or the product overflows).
    public var elementCount: Int? {
        var count = 1
        for dim in shape {
            guard dim >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            if overflow { return nil }
            count = product
        }
        return count
    }

    public init(uint8 values: [UInt8], shape: [Int]) {
        self.init(dtype: .uint8, shape: shape, data: values)
    }

    public init(int16 values: [Int16], shape: [Int]) {
        self.init(dtype: .int16, shape: shape, data: NDArray.littleEndianBytes(values))
    }

    public init(int32 values: [Int32], shape: [Int]) {
        self.init(dtype: .int32, shape: shape, data: NDArray.littleEndianBytes(values))
    }

    public init(int64 values: [Int64], shape: [Int]) {
        self.init(dtype: .int64, shape: shape, data: NDArray.littleEndianBytes(values))
    }

    public init(float32 values: [Float], shape: [Int]) {
        self.init(dtype: .float32, shape: shape, data: NDArray.littleEndianBytes(values.map(\.bitPattern)))
    }

    public init(float64 values: [Double], shape: [Int]) {
        self.init(dtype: .float64, shape: shape, data: NDArray.littleEndianBytes(values.map(\.bitPattern)))
    }

    /// The elements widened to Double, whatever the dtype (float16 included), e.g. for printing or statistics.
    public var doubleValues: [Double] {
        let width = dtype.byteWidth
        let count = data.count / width
        var values: [Double] = []
        values.reserveCapacity(count)
        for index in 0..<count {
            let bits = data.loadLittleEndian(at: index * width, width: width)
            values.append(dtype.widen(bits))
        }
        return values
    }

    static func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * MemoryLayout<T>.size)
        for value in values { bytes.appendLittleEndian(value) }
        return bytes
    }
}

extension NDType {
    /// Interprets `bits` (the element's little-endian bytes, zero-extended) as this type, widened to Double.
    func widen(_ bits: UInt64) -> Double {
        switch self {
        case .uint8, .uint16, .uint32, .uint64: Double(bits)
        case .int8: Double(Int8(truncatingIfNeeded: bits))
        case .int16: Double(Int16(truncatingIfNeeded: bits))
        case .int32: Double(Int32(truncatingIfNeeded: bits))
        case .int64: Double(Int64(bitPattern: bits))
        case .float16: HalfFloat.double(fromBits: UInt16(truncatingIfNeeded: bits))
        case .float32: Double(Float(bitPattern: UInt32(truncatingIfNeeded: bits)))
        case .float64: Double(bitPattern: bits)
        }
    }
}

/// One value of one column of a sample.
///
/// What each encoding accepts when writing, and what it decodes to (decoding is deterministic so values
/// compare with `==`):
///
/// | encoding | write | read |
/// |---|---|---|
/// | bytes, jpeg, png | `.bytes` or `.borrowedBytes` | `.bytes` |
/// | str | `.string` | `.string` |
/// | int, int8…int64, uint8…uint32 | `.int` or `.uint`, range-checked | `.int` |
/// | uint64 | `.uint` or a non-negative `.int` | `.uint` |
/// | float16, float32, float64 | `.float` (rounded to nearest even; a finite value that overflows is an error) | `.float` of the stored value, widened |
/// | json | `.json` (RFC 8259 text, written verbatim as UTF-8) | `.json` (the stored text) |
/// | ndarray… | `.ndarray` | `.ndarray` |
///
/// `==` treats two NaN floats as equal (so a decoded sample equals the one written), and compares `.bytes` and
/// `.borrowedBytes` by their contents; everything else is ordinary equality.
public enum MDSValue: Sendable, Equatable {
    case bytes([UInt8])
    /// Bytes written in place from memory another module owns (see `MDSBorrowedBytes`); the writer appends a large
    /// one straight to its spool file. Never produced by the reader, which returns `.bytes`.
    case borrowedBytes(any MDSBorrowedBytes)
    case string(String)
    case int(Int64)
    case uint(UInt64)
    case float(Double)
    /// JSON text. mosaicml's own writer stores `json.dumps(obj)` (Python's defaults: insertion key order,
    /// `", "` and `": "` separators, non-ASCII escaped as `\uXXXX`); its reader runs `json.loads` on whatever
    /// is stored, so any valid JSON text works. We store the text verbatim and only check that it is valid
    /// RFC 8259 JSON (no NaN/Infinity literals, which Python would accept but other readers would not).
    case json(String)
    case ndarray(NDArray)

    /// The value as the reader returns it: `.borrowedBytes` as `.bytes` (a copy), everything else as it is.
    public var owned: MDSValue {
        if case .borrowedBytes(let bytes) = self { return .bytes(bytes.array) }
        return self
    }

    public static func == (lhs: MDSValue, rhs: MDSValue) -> Bool {
        switch (lhs, rhs) {
        case (.bytes(let a), .bytes(let b)): a == b
        case (.bytes(let a), .borrowedBytes(let b)), (.borrowedBytes(let b), .bytes(let a)):
            a.count == b.count && b.withUnsafeBytes { a.elementsEqual($0) }
        case (.borrowedBytes(let a), .borrowedBytes(let b)):
            a.count == b.count && a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
        case (.string(let a), .string(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.uint(let a), .uint(let b)): a == b
        case (.float(let a), .float(let b)): a == b || (a.isNaN && b.isNaN)
        case (.json(let a), .json(let b)): a == b
        case (.ndarray(let a), .ndarray(let b)): a == b
        default: false
        }
    }

    /// A short name of the kind of value, for error messages.
    var kindName: String {
        switch self {
        case .bytes, .borrowedBytes: "bytes"
        case .string: "string"
        case .int: "int"
        case .uint: "uint"
        case .float: "float"
        case .json: "json"
        case .ndarray: "ndarray"
        }
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        var little = value.littleEndian
        Swift.withUnsafeBytes(of: &little) { append(contentsOf: $0) }
    }

    /// Reads an unsigned little-endian integer of `width` bytes (1...8) starting at `offset`.
    func loadLittleEndian(at offset: Int, width: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<width {
            value |= UInt64(self[offset + index]) << (8 * UInt64(index))
        }
        return value
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` for typed-throws bodies (the standard library's version is `rethrows`, which erases
    /// the error type to `any Error`).
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(ShardError) -> R) throws(ShardError) -> R {
        try withUnsafeBytes { raw in Result { () throws(ShardError) in try body(raw) } }.get()
    }

    mutating func withMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws(ShardError) -> R)
        throws(ShardError) -> R
    {
        try withUnsafeMutableBytes { raw in Result { () throws(ShardError) in try body(raw) } }.get()
    }
}
