/// Encodes and decodes one sample in MDS layout: a u32 byte length for every variable-size column (in
/// column order), then every column's bytes (in column order). All integers little-endian.
struct MDSSampleCodec {
    /// Sorted by name (code point order), as mosaicml stores them.
    let columns: [MDSColumn]
    private let fixedSizes: [Int?]
    private let variableCount: Int

    init(sortedColumns: [MDSColumn]) {
        columns = sortedColumns
        fixedSizes = sortedColumns.map(\.encoding.fixedSize)
        variableCount = fixedSizes.filter { $0 == nil }.count
    }

    // MARK: Encoding

    /// Appends the encoded sample to `buffer` (which the caller empties first). On error `buffer` holds garbage
    /// but nothing else has changed, so the caller can drop the sample and go on.
    func encode(_ sample: [String: MDSValue], into buffer: inout [UInt8]) throws(ShardError) {
        try encode(ordered: try ordered(sample), into: &buffer)
    }

    /// The sample's values in column order, or why the sample's keys are not exactly the columns.
    func ordered(_ sample: [String: MDSValue]) throws(ShardError) -> [MDSValue] {
        if sample.count != columns.count {
            for key in sample.keys where !columns.contains(where: { $0.name == key }) {
                throw ShardError(
                    .unknownColumn, column: key,
                    "sample has a value for '\(key)', which is not a column of this dataset (columns: "
                        + columns.map(\.name).joined(separator: ", ") + ")")
            }
        }
        var values: [MDSValue] = []
        values.reserveCapacity(columns.count)
        for column in columns {
            guard let value = sample[column.name] else {
                throw ShardError(
                    .missingColumn, column: column.name,
                    "sample has no value for column '\(column.name)' (\(column.encoding.name)); every column needs one")
            }
            values.append(value)
        }
        return values
    }

    /// A bytes value that `encode(ordered:into:deferring:atLeast:)` left out of the buffer: its bytes belong at
    /// `offset` of the encoded sample (before whatever the buffer holds from there on).
    struct DeferredValue: Equatable {
        var offset: Int
        var index: Int
    }

    /// Like `encode(_:into:)` with the values already in column order (`columns`), as a pipeline that knows its
    /// columns up front produces them: no dictionary built per sample, no hashing of column names.
    func encode(ordered values: [MDSValue], into buffer: inout [UInt8]) throws(ShardError) {
        var deferred: [DeferredValue] = []
        try encode(ordered: values, into: &buffer, deferring: &deferred, atLeast: Int.max)
    }

    /// `encode(ordered:into:)`, except that the bytes of a `bytes`/`jpeg`/`png` value of `threshold` bytes or more are
    /// not appended: they are listed in `deferred` (in column order), and the size header counts them. The sample is
    /// then the buffer with each deferred value's bytes inserted at its offset, so a writer can append a large value
    /// to its file straight from the value's memory instead of copying it into the buffer first.
    func encode(
        ordered values: [MDSValue], into buffer: inout [UInt8], deferring deferred: inout [DeferredValue], atLeast threshold: Int
    ) throws(ShardError) {
        guard values.count == columns.count else {
            throw ShardError(
                .missingColumn, "sample has \(values.count) values for \(columns.count) columns ("
                    + columns.map(\.name).joined(separator: ", ") + ")")
        }
        let headerStart = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: 4 * variableCount))
        var variableIndex = 0
        // By index, without binding elements: a copied value or column retains its strings, which were made on
        // another thread (a contended reference count on every sample).
        for index in columns.indices {
            let start = buffer.count
            let size: Int
            // The encoding first: reading values[index] copies the value (a retain of its string, made on another
            // thread), which only a bytes column needs here.
            if fixedSizes[index] == nil, columns[index].encoding.isBytesLike,
               let large = Self.bytesCount(values[index], as: columns[index].encoding), large >= threshold {
                deferred.append(DeferredValue(offset: start, index: index))
                size = large
            } else {
                try Self.encode(values[index], as: columns[index].encoding, column: columns[index].name, into: &buffer)
                size = buffer.count - start
            }
            if let fixed = fixedSizes[index] {
                // Every encoder writes exactly the fixed size; this guards the invariant the layout rests on.
                precondition(size == fixed, "MDS encoder wrote \(size) bytes for fixed-size \(columns[index].encoding.name)")
            } else {
                guard size <= Int(UInt32.max) else {
                    throw ShardError(
                        .sampleTooLarge, column: columns[index].name,
                        "value of column '\(columns[index].name)' is \(size) bytes; MDS stores lengths as u32 (max 4 GiB)")
                }
                buffer.withUnsafeMutableBytes { bytes in
                    bytes.storeBytes(
                        of: UInt32(size).littleEndian, toByteOffset: headerStart + 4 * variableIndex, as: UInt32.self)
                }
                variableIndex += 1
            }
        }
    }

    /// The size of a bytes value of a bytes-like column (whose encoding is the bytes as they are), else nil.
    static func bytesCount(_ value: MDSValue, as encoding: MDSEncoding) -> Int? {
        guard encoding.isBytesLike else { return nil }
        switch value {
        case .bytes(let bytes): return bytes.count
        case .borrowedBytes(let bytes): return bytes.count
        default: return nil
        }
    }

    static func encode(_ value: MDSValue, as encoding: MDSEncoding, column: String, into buffer: inout [UInt8])
        throws(ShardError)
    {
        func mismatch(_ expected: String) -> ShardError {
            ShardError(
                .typeMismatch, column: column,
                "column '\(column)' is \(encoding.name) and needs \(expected), but the sample has \(value.kindName)")
        }
        func outOfRange(_ shown: String) -> ShardError {
            ShardError(.valueOutOfRange, column: column, "value \(shown) of column '\(column)' does not fit \(encoding.name)")
        }

        func appendInteger<T: FixedWidthInteger>(_ value: MDSValue, as type: T.Type) throws(ShardError) {
            switch value {
            case .int(let number):
                guard let narrowed = T(exactly: number) else { throw outOfRange(String(number)) }
                buffer.appendLittleEndian(narrowed)
            case .uint(let number):
                guard let narrowed = T(exactly: number) else { throw outOfRange(String(number)) }
                buffer.appendLittleEndian(narrowed)
            default:
                throw mismatch(".int or .uint")
            }
        }

        switch encoding {
        case .bytes, .jpeg, .png:
            switch value {
            case .bytes(let bytes): buffer.append(contentsOf: bytes)
            case .borrowedBytes(let bytes): bytes.withUnsafeBytes { buffer.append(contentsOf: $0) }
            default: throw mismatch(".bytes")
            }
        case .str:
            guard case .string(let text) = value else { throw mismatch(".string") }
            buffer.append(contentsOf: text.utf8)
        case .json:
            guard case .json(let text) = value else { throw mismatch(".json") }
            if let problem = JSONSyntaxChecker.problem(in: text) {
                throw ShardError(.invalidValue, column: column, "value of json column '\(column)' is not valid JSON: \(problem)")
            }
            buffer.append(contentsOf: text.utf8)
        case .int, .int64: try appendInteger(value, as: Int64.self)
        case .int32: try appendInteger(value, as: Int32.self)
        case .int16: try appendInteger(value, as: Int16.self)
        case .int8: try appendInteger(value, as: Int8.self)
        case .uint64: try appendInteger(value, as: UInt64.self)
        case .uint32: try appendInteger(value, as: UInt32.self)
        case .uint16: try appendInteger(value, as: UInt16.self)
        case .uint8: try appendInteger(value, as: UInt8.self)
        case .float64:
            guard case .float(let number) = value else { throw mismatch(".float") }
            buffer.appendLittleEndian(number.bitPattern)
        case .float32:
            guard case .float(let number) = value else { throw mismatch(".float") }
            let narrowed = Float(number)
            // An overflow to infinity would silently change the data; an explicit infinity is fine.
            if number.isFinite && !narrowed.isFinite { throw outOfRange("\(number)") }
            buffer.appendLittleEndian(narrowed.bitPattern)
        case .float16:
            guard case .float(let number) = value else { throw mismatch(".float") }
            guard let bits = HalfFloat.bits(from: number) else { throw outOfRange("\(number)") }
            buffer.appendLittleEndian(bits)
        case .ndarray(let dtype, let shape):
            guard case .ndarray(let array) = value else { throw mismatch(".ndarray") }
            try encodeArray(array, dtype: dtype, shape: shape, encoding: encoding, column: column, into: &buffer)
        }

    }

    private static func encodeArray(
        _ array: NDArray, dtype: NDType?, shape: [Int]?, encoding: MDSEncoding, column: String,
        into buffer: inout [UInt8]
    ) throws(ShardError) {
        func invalid(_ problem: String) -> ShardError {
            ShardError(.invalidValue, column: column, "ndarray of column '\(column)' (\(encoding.name)) \(problem)")
        }
        if let dtype, array.dtype != dtype { throw invalid("has dtype \(array.dtype.rawValue), expected \(dtype.rawValue)") }
        guard let count = array.elementCount else { throw invalid("has an invalid shape \(array.shape)") }
        let (expectedBytes, overflow) = count.multipliedReportingOverflow(by: array.dtype.byteWidth)
        guard !overflow, expectedBytes == array.data.count else {
            throw invalid("has \(array.data.count) data bytes, but shape \(array.shape) of \(array.dtype.rawValue) needs \(expectedBytes)")
        }
        if dtype == nil { buffer.append(array.dtype.mdsCode) }
        if let shape {
            guard array.shape == shape else { throw invalid("has shape \(array.shape), expected \(shape)") }
        } else {
            // mosaicml refuses 0-d arrays (use a scalar encoding) and packs ndim into 6 bits.
            guard (1...63).contains(array.shape.count) else {
                throw invalid("has \(array.shape.count) dimensions; MDS stores 1 to 63 (use a scalar encoding for 0)")
            }
            // The shape is stored in the smallest unsigned type that holds its largest dimension.
            let largest = UInt64(array.shape.max()!)
            let (code, width): (UInt8, Int) =
                largest < 1 << 8 ? (0, 1) : largest < 1 << 16 ? (1, 2) : largest < 1 << 32 ? (2, 4) : (3, 8)
            buffer.append(UInt8(array.shape.count) << 2 | code)
            for dim in array.shape {
                var little = UInt64(dim).littleEndian
                withUnsafeBytes(of: &little) { buffer.append(contentsOf: $0[0..<width]) }
            }
        }
        buffer.append(contentsOf: array.data)
    }

    // MARK: Decoding

    /// Decodes the sample occupying `bytes` (exactly). `describe` names the sample in error messages.
    func decode(_ bytes: UnsafeRawBufferPointer, path: String, describe: @autoclosure () -> String)
        throws(ShardError) -> [String: MDSValue]
    {
        func corrupt(_ problem: String) -> ShardError {
            ShardError(.corruptShard, path: path, "shard \(path) is corrupt: \(describe()) \(problem)")
        }
        guard bytes.count >= 4 * variableCount else { throw corrupt("is shorter than its size header") }
        var sizes: [Int] = []
        sizes.reserveCapacity(columns.count)
        var variableIndex = 0
        for fixed in fixedSizes {
            if let fixed {
                sizes.append(fixed)
            } else {
                let size = UInt32(
                    littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * variableIndex, as: UInt32.self))
                sizes.append(Int(size))
                variableIndex += 1
            }
        }
        var offset = 4 * variableCount
        var sample: [String: MDSValue] = [:]
        sample.reserveCapacity(columns.count)
        for (column, size) in zip(columns, sizes) {
            guard size <= bytes.count - offset else {
                throw corrupt("column '\(column.name)' runs past the end of the sample")
            }
            let valueBytes = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + size])
            do throws(DecodeFailure) {
                sample[column.name] = try Self.decode(valueBytes, as: column.encoding)
            } catch {
                throw corrupt("column '\(column.name)' (\(column.encoding.name)): \(error.problem)")
            }
            offset += size
        }
        guard offset == bytes.count else { throw corrupt("has \(bytes.count - offset) bytes after its last column") }
        return sample
    }

    struct DecodeFailure: Error {
        var problem: String
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, as encoding: MDSEncoding) throws(DecodeFailure) -> MDSValue {
        if let fixed = encoding.fixedSize, bytes.count != fixed {
            throw DecodeFailure(problem: "has \(bytes.count) bytes, expected \(fixed)")
        }
        func integer() -> UInt64 {
            var value: UInt64 = 0
            for (index, byte) in bytes.enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
            return value
        }
        switch encoding {
        case .bytes, .jpeg, .png: return .bytes(Array(bytes))
        case .str, .json:
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw DecodeFailure(problem: "is not valid UTF-8")
            }
            return encoding == .str ? .string(text) : .json(text)
        case .int, .int64: return .int(Int64(bitPattern: integer()))
        case .int32: return .int(Int64(Int32(truncatingIfNeeded: integer())))
        case .int16: return .int(Int64(Int16(truncatingIfNeeded: integer())))
        case .int8: return .int(Int64(Int8(truncatingIfNeeded: integer())))
        case .uint32, .uint16, .uint8: return .int(Int64(integer()))
        case .uint64: return .uint(integer())
        case .float64: return .float(NDType.float64.widen(integer()))
        case .float32: return .float(NDType.float32.widen(integer()))
        case .float16: return .float(NDType.float16.widen(integer()))
        case .ndarray(let dtype, let shape): return .ndarray(try decodeArray(bytes, dtype: dtype, shape: shape))
        }
    }

    private static func decodeArray(_ bytes: UnsafeRawBufferPointer, dtype fixedType: NDType?, shape fixedShape: [Int]?)
        throws(DecodeFailure) -> NDArray
    {
        var offset = 0
        let dtype: NDType
        if let fixedType {
            dtype = fixedType
        } else {
            guard let code = bytes.first else { throw DecodeFailure(problem: "has no dtype byte") }
            guard let type = NDType(mdsCode: code) else { throw DecodeFailure(problem: "has unknown dtype code \(code)") }
            dtype = type
            offset += 1
        }
        let shape: [Int]
        if let fixedShape {
            shape = fixedShape
        } else {
            guard offset < bytes.count else { throw DecodeFailure(problem: "has no shape header") }
            let header = bytes[offset]
            offset += 1
            let dimensions = Int(header >> 2)
            let width = 1 << Int(header & 3)
            guard dimensions * width <= bytes.count - offset else {
                throw DecodeFailure(problem: "shape runs past the end of the value")
            }
            var dims: [Int] = []
            for _ in 0..<dimensions {
                var dim: UInt64 = 0
                for index in 0..<width { dim |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
                guard dim <= UInt64(Int.max) else { throw DecodeFailure(problem: "has a dimension of \(dim)") }
                dims.append(Int(dim))
                offset += width
            }
            shape = dims
        }
        let data = Array(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
        let array = NDArray(dtype: dtype, shape: shape, data: data)
        guard let count = array.elementCount,
            case let (needed, overflow) = count.multipliedReportingOverflow(by: dtype.byteWidth), !overflow,
            needed == data.count
        else {
            throw DecodeFailure(problem: "has \(data.count) data bytes, which do not fill shape \(shape) of \(dtype.rawValue)")
        }
        return array
    }
}

extension MDSEncoding {
    /// An encoding whose bytes are the value's bytes as they are (`bytes`, `jpeg`, `png`).
    var isBytesLike: Bool { self == .bytes || self == .jpeg || self == .png }
}
