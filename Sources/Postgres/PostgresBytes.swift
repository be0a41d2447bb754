#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of one `bytea` value, read-only, indexed from 0 like an array; `==` compares contents.
///
/// A value read by a binary COPY is a slice of its row's message exactly as libpq handed it over: the message buffer
/// is adopted, not copied, and freed (with `PQfreemem`) when the last value sharing it goes. For a value of hundreds
/// of MB a copy is hundreds of MB more memory, and the writer can append these bytes to its spool file straight from
/// here. Values made any other way (`init(_:)`, an array literal, single-row mode) own a copy.
public struct PostgresBytes: Sendable {
    private let storage: Storage?
    private let offset: Int
    public let count: Int

    /// Empty bytes.
    public init() {
        storage = nil
        offset = 0
        count = 0
    }

    /// A copy of `bytes`.
    public init(_ bytes: some Sequence<UInt8>) {
        let array = Array(bytes)
        self = array.withUnsafeBytes { PostgresBytes(copying: $0) }
    }

    /// A copy of the memory `bytes` points at.
    init(copying bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else {
            self.init()
            return
        }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 16)
        copy.copyMemory(from: source, byteCount: bytes.count)
        self.init(adopting: copy, count: bytes.count) { $0.deallocate() }
    }

    /// Takes ownership of `count` bytes at `base`: `release` frees them once no value refers to them any more.
    init(adopting base: UnsafeMutableRawPointer, count: Int, release: @escaping @Sendable (UnsafeMutableRawPointer) -> Void) {
        storage = Storage(base: base, count: count, release: release)
        offset = 0
        self.count = count
    }

    private init(storage: Storage?, offset: Int, count: Int) {
        self.storage = storage
        self.offset = offset
        self.count = count
    }

    /// The bytes at `range` (positions in these bytes), sharing their memory: nothing is copied, and the memory lives
    /// as long as the slice does. Indexed from 0 again.
    public func slice(_ range: Range<Int>) -> PostgresBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "slice \(range) out of 0..<\(count)")
        if range.isEmpty { return PostgresBytes() }
        return PostgresBytes(storage: storage, offset: offset + range.lowerBound, count: range.count)
    }

    /// Calls `body` with the bytes in place (valid only during the call).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        guard let storage else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try withExtendedLifetime(storage) {
            try body(UnsafeRawBufferPointer(start: storage.base + offset, count: count))
        }
    }

    /// Whether this value and `other` share memory (one is a slice of the other's buffer, or both of a third's): for
    /// tests of what is copied and what is not.
    public func sharesStorage(with other: PostgresBytes) -> Bool {
        storage != nil && storage === other.storage
    }
}

extension PostgresBytes {
    /// The one owner of an adopted buffer. Immutable after `init`, so sharing it between threads is safe.
    final class Storage: @unchecked Sendable {
        let base: UnsafeRawPointer
        private let count: Int
        private let release: @Sendable (UnsafeMutableRawPointer) -> Void

        init(base: UnsafeMutableRawPointer, count: Int, release: @escaping @Sendable (UnsafeMutableRawPointer) -> Void) {
            self.base = UnsafeRawPointer(base)
            self.count = count
            self.release = release
        }

        deinit { release(UnsafeMutableRawPointer(mutating: base)) }
    }
}

extension PostgresBytes: RandomAccessCollection {
    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(position: Int) -> UInt8 {
        precondition(position >= 0 && position < count, "index \(position) out of 0..<\(count)")
        return withUnsafeBytes { $0[position] }
    }

    public func withContiguousStorageIfAvailable<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R? {
        try withUnsafeBytes { raw in try raw.withMemoryRebound(to: UInt8.self) { try body($0) } }
    }
}

extension PostgresBytes: Equatable, Hashable {
    public static func == (lhs: PostgresBytes, rhs: PostgresBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if lhs.count == 0 || (lhs.storage === rhs.storage && lhs.offset == rhs.offset) { return true }
        return lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 } }
    }

    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

extension PostgresBytes: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: UInt8...) { self.init(elements) }
}

extension PostgresBytes: CustomStringConvertible {
    /// The size only: a test failure or a log line never prints hundreds of MB.
    public var description: String { "\(count) bytes" }
}
