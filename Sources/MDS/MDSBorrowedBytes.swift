/// Bytes that another module owns and keeps alive (e.g. a value still in the database driver's receive buffer),
/// written by `MDSValue.borrowedBytes` exactly as `MDSValue.bytes` would write them, but without first being copied
/// into a Swift array: for a value of hundreds of MB each copy is hundreds of MB of memory.
///
/// A conforming type must be immutable (it is read from the writer's thread) and must keep its memory valid for as
/// long as the value exists.
public protocol MDSBorrowedBytes: Sendable {
    var count: Int { get }
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension MDSBorrowedBytes {
    /// A copy in an array (what the reader returns for the same column).
    public var array: [UInt8] { withUnsafeBytes { [UInt8]($0) } }

    /// `withUnsafeBytes` for typed-throws bodies.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(ShardError) -> R) throws(ShardError) -> R {
        try withUnsafeBytes { raw in Result { () throws(ShardError) in try body(raw) } }.get()
    }
}
