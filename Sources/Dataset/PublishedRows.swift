import SystemIO

/// A cursor value as an orderable point: integers, timestamps (microseconds) and dates (days) as Int64, numerics as
/// their decimal text compared by value. The same order PostgreSQL gives the cursor column.
public enum CursorPoint: Hashable, Comparable, Sendable {
    case integer(Int64)
    case decimal(String)

    public static func < (a: CursorPoint, b: CursorPoint) -> Bool {
        switch (a, b) {
        case (.integer(let x), .integer(let y)): return x < y
        case (.decimal(let x), .decimal(let y)): return DecimalText.less(x, y)
        case (.integer(let x), .decimal(let y)): return DecimalText.less(String(x), y)
        case (.decimal(let x), .integer(let y)): return DecimalText.less(x, String(y))
        }
    }
}

/// One row a run consumed: published as a sample, or quarantined. Its identity across runs is (cursor, key).
public struct PublishedRow: Hashable, Sendable {
    public var cursor: CursorPoint
    /// nil for a row whose key was NULL.
    public var key: String?
    public init(cursor: CursorPoint, key: String?) {
        self.cursor = cursor
        self.key = key
    }
}

/// `rows.bin` of a version: every (cursor, key) its run consumed, in the order read. A later run that re-reads a
/// cursor window (to find rows committed late) skips exactly these. Binary and append-only:
/// "ETLROWS1", then per row a tag byte (0 = int64, 1 = decimal text), the cursor (8 bytes, or u32 length + UTF-8),
/// and the key (u32 length + UTF-8, or 0xFFFFFFFF for NULL). Little-endian.
public enum PublishedRowsFile {
    public static let fileName = "rows.bin"
    static let magic = Array("ETLROWS1".utf8)

    /// Buffers rows and writes them in 1 MiB chunks.
    public final class Writer {
        private var file: SystemFile?
        private var buffer: [UInt8] = []
        public let path: String
        public private(set) var count = 0

        public init(path: String) throws(SystemError) {
            self.path = path
            file = try SystemFile.createExclusive(path, role: "row list")
            buffer.reserveCapacity(1 << 20)
            buffer.append(contentsOf: PublishedRowsFile.magic)
        }

        /// Reopens a list a killed run left, cut back to `length` bytes holding `count` rows (its last checkpoint).
        public init(resuming path: String, length: Int, count: Int) throws(SystemError) {
            self.path = path
            let reopened = try SystemFile.openForAppending(path, role: "row list")
            try reopened.truncate(to: length)
            file = consume reopened
            self.count = count
            buffer.reserveCapacity(1 << 20)
        }

        /// Writes what is buffered and syncs, returning the file's length: a checkpoint's view of it.
        public func checkpoint() throws(SystemError) -> Int {
            try flush()
            try file?.sync()
            return try file?.size() ?? 0
        }

        public func append(_ row: PublishedRow) throws(SystemError) {
            switch row.cursor {
            case .integer(let value):
                buffer.append(0)
                withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
            case .decimal(let text):
                buffer.append(1)
                appendText(text)
            }
            if let key = row.key { appendText(key) } else { withUnsafeBytes(of: UInt32.max.littleEndian) { buffer.append(contentsOf: $0) } }
            count += 1
            if buffer.count >= 1 << 20 { try flush() }
        }

        private func appendText(_ text: String) {
            var text = text
            text.withUTF8 { utf8 in
                withUnsafeBytes(of: UInt32(utf8.count).littleEndian) { buffer.append(contentsOf: $0) }
                buffer.append(contentsOf: utf8)
            }
        }

        private func flush() throws(SystemError) {
            guard !buffer.isEmpty else { return }
            try file?.write(buffer)
            buffer.removeAll(keepingCapacity: true)
        }

        public func close() throws(SystemError) {
            try flush()
            guard var open = file.take() else { return }
            try open.sync()
            try open.close()
        }
    }

    /// Calls `body` for every row of the file at `path`, streaming (memory bounded by one chunk).
    public static func forEach(_ path: String, _ body: (PublishedRow) -> Void) throws(SystemError) {
        let file = try SystemFile.openForReading(path, role: "row list")
        var reader = ChunkReader(file: file)
        let head = try reader.bytes(magic.count)
        guard head == magic else { throw SystemError("read row list", path: path, errno: 0, detail: "not an etl row list") }
        while let tag = try reader.byteIfAny() {
            let cursor: CursorPoint
            if tag == 0 {
                cursor = .integer(Int64(littleEndian: try reader.scalar(Int64.self)))
            } else {
                let length = Int(UInt32(littleEndian: try reader.scalar(UInt32.self)))
                cursor = .decimal(String(decoding: try reader.bytes(length), as: UTF8.self))
            }
            let keyLength = UInt32(littleEndian: try reader.scalar(UInt32.self))
            let key = keyLength == UInt32.max ? nil : String(decoding: try reader.bytes(Int(keyLength)), as: UTF8.self)
            body(PublishedRow(cursor: cursor, key: key))
        }
    }

    private struct ChunkReader: ~Copyable {
        let file: SystemFile
        var chunk: [UInt8] = []
        var index = 0
        var position = 0

        init(file: consuming SystemFile) { self.file = file }

        mutating func fill(_ needed: Int) throws(SystemError) -> Bool {
            if chunk.count - index >= needed { return true }
            var next = Array(chunk[index...])
            var more = [UInt8](repeating: 0, count: max(1 << 20, needed))
            let count = try more.withSystemMutableBytes { (raw) throws(SystemError) in try file.readSome(into: raw, at: position, untilFull: true) }
            position += count
            next.append(contentsOf: more[0..<count])
            chunk = next
            index = 0
            return chunk.count >= needed
        }

        mutating func byteIfAny() throws(SystemError) -> UInt8? {
            guard try fill(1) else { return nil }
            defer { index += 1 }
            return chunk[index]
        }

        mutating func bytes(_ count: Int) throws(SystemError) -> [UInt8] {
            guard try fill(count) else { throw SystemError("read row list", path: file.path, errno: 0, detail: "it ends in the middle of a row") }
            defer { index += count }
            return Array(chunk[index..<index + count])
        }

        mutating func scalar<T: FixedWidthInteger>(_ type: T.Type) throws(SystemError) -> T {
            let raw = try bytes(MemoryLayout<T>.size)
            return raw.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
        }
    }
}

/// Comparison of decimal numbers given as text (`-12.50`, `3`), exactly, without a floating-point detour.
enum DecimalText {
    static func less(_ a: String, _ b: String) -> Bool { compare(a, b) < 0 }

    static func compare(_ a: String, _ b: String) -> Int {
        let (negA, intA, fracA) = parts(a), (negB, intB, fracB) = parts(b)
        let zeroA = intA.isEmpty && fracA.isEmpty, zeroB = intB.isEmpty && fracB.isEmpty
        if zeroA && zeroB { return 0 }
        let signA = zeroA ? 0 : (negA ? -1 : 1), signB = zeroB ? 0 : (negB ? -1 : 1)
        if signA != signB { return signA < signB ? -1 : 1 }
        var magnitude: Int
        if intA.count != intB.count {
            magnitude = intA.count < intB.count ? -1 : 1
        } else if intA != intB {
            magnitude = intA.lexicographicallyPrecedes(intB) ? -1 : 1
        } else {
            let width = max(fracA.count, fracB.count)
            let paddedA = fracA + Array(repeating: UInt8(ascii: "0"), count: width - fracA.count)
            let paddedB = fracB + Array(repeating: UInt8(ascii: "0"), count: width - fracB.count)
            magnitude = paddedA == paddedB ? 0 : (paddedA.lexicographicallyPrecedes(paddedB) ? -1 : 1)
        }
        return signA < 0 ? -magnitude : magnitude
    }

    /// Sign, integer digits without leading zeros, fraction digits without trailing zeros.
    private static func parts(_ text: String) -> (Bool, [UInt8], [UInt8]) {
        var utf8 = Array(text.utf8)
        var negative = false
        if utf8.first == UInt8(ascii: "-") { negative = true; utf8.removeFirst() } else if utf8.first == UInt8(ascii: "+") { utf8.removeFirst() }
        let dot = utf8.firstIndex(of: UInt8(ascii: "."))
        var integer = Array(utf8[..<(dot ?? utf8.endIndex)])
        var fraction = dot.map { Array(utf8[($0 + 1)...]) } ?? []
        while integer.first == UInt8(ascii: "0") { integer.removeFirst() }
        while fraction.last == UInt8(ascii: "0") { fraction.removeLast() }
        return (negative, integer, fraction)
    }
}
