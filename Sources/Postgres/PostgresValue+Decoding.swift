#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bounds-checked big-endian reader over one binary value. Every read checks the remaining length first, so a
/// malformed value surfaces as a `protocolViolation` instead of reading past the buffer libpq handed us.
struct BinaryReader {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws(PostgresError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw .malformed("needs \(size) more bytes, \(remaining) left") }
        let value = T(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += size
        return value
    }

    mutating func readBytes(_ count: Int) throws(PostgresError) -> UnsafeRawBufferPointer {
        guard count >= 0, remaining >= count else {
            throw .malformed("needs \(count) more bytes, \(remaining) left")
        }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        offset += count
        return slice
    }

    func expectEnd() throws(PostgresError) {
        guard remaining == 0 else { throw .malformed("\(remaining) unexpected trailing bytes") }
    }
}

extension PostgresError {
    static func malformed(_ what: String) -> PostgresError {
        PostgresError(.protocolViolation, "malformed binary value: \(what)")
    }
}

extension PostgresValue {
    /// Decodes one non-NULL value in PostgreSQL's binary send format. A bytea's bytes become `bytea(bytes)` (by
    /// default a copy; a binary COPY passes a slice of the message it adopted instead).
    static func decode(
        _ bytes: UnsafeRawBufferPointer, as format: ValueFormat,
        bytea: (UnsafeRawBufferPointer) -> PostgresBytes = PostgresBytes.init(copying:)
    ) throws(PostgresError) -> PostgresValue {
        var reader = BinaryReader(bytes)
        let value: PostgresValue
        switch format {
        case .bool:
            let byte = try reader.read(UInt8.self)
            guard byte <= 1 else { throw .malformed("bool byte \(byte)") }
            value = .bool(byte == 1)
        case .int16: value = .int16(try reader.read(Int16.self))
        case .int32: value = .int32(try reader.read(Int32.self))
        case .int64: value = .int64(try reader.read(Int64.self))
        case .float32: value = .float32(Float(bitPattern: try reader.read(UInt32.self)))
        case .float64: value = .float64(Double(bitPattern: try reader.read(UInt64.self)))
        case .numeric: value = .numeric(try decodeNumeric(&reader))
        case .text: value = .text(try utf8(try reader.readBytes(reader.remaining)))
        case .json: value = .json(try utf8(try reader.readBytes(reader.remaining)))
        case .jsonb:
            let version = try reader.read(UInt8.self)
            guard version == 1 else { throw .malformed("jsonb format version \(version), expected 1") }
            value = .json(try utf8(try reader.readBytes(reader.remaining)))
        case .bytea: value = .bytea(bytea(try reader.readBytes(reader.remaining)))
        case .uuid: value = .uuid(uuidText(try reader.readBytes(16)))
        case .timestamp: value = .timestamptz(microsecondsSinceUnixEpoch: try unixMicroseconds(try reader.read(Int64.self)))
        case .date: value = .date(daysSinceUnixEpoch: try unixDays(try reader.read(Int32.self)))
        case .textArray(let elementOID):
            value = .textArray(try decodeArray(&reader, elementOID: elementOID) { bytes throws(PostgresError) in
                try utf8(bytes)
            })
        case .integerArray(let elementOID):
            value = .int64Array(try decodeArray(&reader, elementOID: elementOID) { bytes throws(PostgresError) in
                var element = BinaryReader(bytes)
                let number: Int64 = switch elementOID {
                case 21: Int64(try element.read(Int16.self))
                case 23: Int64(try element.read(Int32.self))
                default: try element.read(Int64.self)
                }
                try element.expectEnd()
                return number
            })
        }
        try reader.expectEnd()
        return value
    }

    private static func utf8(_ bytes: UnsafeRawBufferPointer) throws(PostgresError) -> String {
        // The session's client_encoding is forced to UTF8 at connect, so anything else is corruption. The standard
        // library's `String(validating:as:)` decodes scalar by scalar through the generic encoding machinery (a third
        // of the reader thread's work on rows of short text); `String(decoding:as:)` is its fast path, but repairs
        // instead of failing, so non-ASCII text is compared with its source: a repair always changes the bytes.
        if isASCII(bytes) { return String(decoding: bytes, as: UTF8.self) }
        var text = String(decoding: bytes, as: UTF8.self)
        let unchanged = text.withUTF8 { decoded in
            decoded.count == bytes.count && (bytes.isEmpty || memcmp(decoded.baseAddress!, bytes.baseAddress!, bytes.count) == 0)
        }
        guard unchanged else { throw .malformed("text is not valid UTF-8") }
        return text
    }

    /// Whether `bytes` are UTF-8 that `utf8` accepts, without keeping the string.
    static func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if isASCII(bytes) { return true }
        var text = String(decoding: bytes, as: UTF8.self)
        return text.withUTF8 { decoded in
            decoded.count == bytes.count && memcmp(decoded.baseAddress!, bytes.baseAddress!, bytes.count) == 0
        }
    }

    /// Whether every byte is below 0x80, eight at a time.
    private static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        let count = bytes.count
        while index + 8 <= count {
            if bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            index += 8
        }
        while index < count {
            if bytes[index] & 0x80 != 0 { return false }
            index += 1
        }
        return true
    }

    private static func uuidText(_ bytes: UnsafeRawBufferPointer) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { out.append(UInt8(ascii: "-")) }
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Microseconds since 2000-01-01 (PostgreSQL's epoch) to microseconds since 1970-01-01.
    private static func unixMicroseconds(_ postgres: Int64) throws(PostgresError) -> Int64 {
        if postgres == infinity || postgres == negativeInfinity { return postgres }
        let (unix, overflow) = postgres.addingReportingOverflow(946_684_800_000_000)
        // The last ~30 years of PostgreSQL's range (up to 294276 AD) do not fit; a finite value landing exactly on a
        // sentinel would read back as infinity, so it is refused too.
        guard !overflow, unix != infinity, unix != negativeInfinity else {
            throw PostgresError(.valueOutOfRange, "timestamp beyond the range of Int64 microseconds since 1970")
        }
        return unix
    }

    private static func unixDays(_ postgres: Int32) throws(PostgresError) -> Int32 {
        if postgres == Int32.max || postgres == Int32.min { return postgres }
        let (unix, overflow) = postgres.addingReportingOverflow(10_957)
        guard !overflow, unix != Int32.max, unix != Int32.min else {
            throw PostgresError(.valueOutOfRange, "date beyond the range of Int32 days since 1970")
        }
        return unix
    }

    /// numeric's binary form: ndigits, weight (of the first digit, in powers of 10000), sign, display scale, then
    /// ndigits base-10000 digits. Rendered the way the server's numeric_out does, with exactly `dscale` decimals.
    private static func decodeNumeric(_ reader: inout BinaryReader) throws(PostgresError) -> String {
        let count = Int(try reader.read(Int16.self))
        let weight = Int(try reader.read(Int16.self))
        let sign = try reader.read(UInt16.self)
        let scale = Int(try reader.read(UInt16.self))
        switch sign {
        case 0xC000: return "NaN"
        case 0xD000: return "Infinity"
        case 0xF000: return "-Infinity"
        case 0x0000, 0x4000: break
        default: throw .malformed("numeric sign 0x\(String(sign, radix: 16))")
        }
        guard count >= 0, scale <= 0x3FFF else { throw .malformed("numeric header ndigits=\(count) dscale=\(scale)") }
        guard reader.remaining == count * 2 else { throw .malformed("numeric with \(count) digits has \(reader.remaining) bytes") }
        var digits: [Int] = []
        digits.reserveCapacity(count)
        for _ in 0..<count {
            let digit = Int(try reader.read(Int16.self))
            guard (0...9999).contains(digit) else { throw .malformed("numeric digit \(digit)") }
            digits.append(digit)
        }
        func group(atWeight w: Int) -> Int {
            let index = weight - w
            return index >= 0 && index < digits.count ? digits[index] : 0
        }

        var text = sign == 0x4000 ? "-" : ""
        if weight < 0 {
            text += "0"
        } else {
            text += String(group(atWeight: weight))
            for w in stride(from: weight - 1, through: 0, by: -1) {
                let chunk = String(group(atWeight: w))
                text += String(repeating: "0", count: 4 - chunk.count) + chunk
            }
        }
        if scale > 0 {
            var fraction = ""
            fraction.reserveCapacity(scale + 4)
            var w = -1
            for _ in 0..<((scale + 3) / 4) {
                let chunk = String(group(atWeight: w))
                fraction += String(repeating: "0", count: 4 - chunk.count) + chunk
                w -= 1
            }
            text += "." + fraction.prefix(scale)
        }
        return text
    }

    /// Array binary form: ndim, has-null flag, element OID, (length, lower bound) per dimension, then each element
    /// as a length (-1 for NULL) and its bytes.
    private static func decodeArray<Element>(
        _ reader: inout BinaryReader, elementOID: UInt32,
        element decodeElement: (UnsafeRawBufferPointer) throws(PostgresError) -> Element
    ) throws(PostgresError) -> [Element?] {
        let dimensions = try reader.read(Int32.self)
        let flags = try reader.read(Int32.self)
        let oid = try reader.read(UInt32.self)
        guard flags == 0 || flags == 1 else { throw .malformed("array flags \(flags)") }
        guard oid == elementOID else { throw .malformed("array element oid \(oid), expected \(elementOID)") }
        if dimensions == 0 { return [] }
        guard dimensions > 0 else { throw .malformed("array with \(dimensions) dimensions") }
        guard dimensions == 1 else {
            throw PostgresError(.unsupportedType, "\(dimensions)-dimensional arrays are not supported, only one-dimensional ones")
        }
        let count = Int(try reader.read(Int32.self))
        _ = try reader.read(Int32.self)  // lower bound: the elements are what matters, not their subscripts
        // Each element takes at least its 4-byte length, which bounds the allocation by the bytes actually present.
        guard count >= 0, count <= reader.remaining / 4 else { throw .malformed("array length \(count)") }
        var elements: [Element?] = []
        elements.reserveCapacity(count)
        for _ in 0..<count {
            let length = Int(try reader.read(Int32.self))
            if length == -1 {
                elements.append(nil)
            } else {
                elements.append(try decodeElement(try reader.readBytes(length)))
            }
        }
        return elements
    }
}
