/// Encodes one sample column by column straight into a byte buffer, in the layout `MDSSampleCodec` writes (a u32
/// length per variable-size column, then every column's bytes, columns in code point order of their names).
///
/// For a producer that has a column's bytes at hand, such as a text value read in place from the database's wire
/// format: making an `MDSValue` (a `String`) of it only for the codec to copy it out again costs more, on rows of a
/// few hundred bytes, than the rest of the row's work. The result is byte for byte what the codec writes for the same
/// values (`MDSSampleBuilderTests`), and `MDSWriter.write(encodedSample:)` takes it as it is.
public struct MDSSampleBuilder {
    /// The columns in storage order, with what the builder needs of each.
    public struct Layout: Sendable {
        public let columns: [MDSColumn]
        let fixedSizes: [Int?]
        let variableCount: Int

        /// `columns` in any order; they are stored sorted, as `MDSWriter` sorts them.
        public init(columns: [MDSColumn]) {
            self.columns = columns.sorted { String.codePointPrecedes($0.name, $1.name) }
            fixedSizes = self.columns.map(\.encoding.fixedSize)
            variableCount = fixedSizes.count { $0 == nil }
        }
    }

    private let layout: Layout
    private let headerStart: Int
    private var column = 0
    private var variableIndex = 0

    /// Starts a sample at the end of `buffer`; append every column in `layout.columns` order, then call `finish`.
    public init(_ layout: Layout, in buffer: inout [UInt8]) {
        self.layout = layout
        headerStart = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: 4 * layout.variableCount))
    }

    /// The next column's value as raw bytes: for `str` (valid UTF-8), `bytes`, `jpeg`, `png` and `json` (valid JSON)
    /// columns, whose encoding is the bytes themselves; the caller vouches for the content.
    public mutating func appendBytes(_ bytes: UnsafeRawBufferPointer, into buffer: inout [UInt8]) throws(ShardError) {
        precondition(layout.fixedSizes[column] == nil, "raw bytes go to a variable-size column")
        buffer.append(contentsOf: bytes)
        try ended(size: bytes.count, in: &buffer)
    }

    /// The next column's value as text, for a `str` column.
    public mutating func appendText(_ text: String, into buffer: inout [UInt8]) throws(ShardError) {
        precondition(layout.fixedSizes[column] == nil, "text goes to a variable-size column")
        let start = buffer.count
        buffer.append(contentsOf: text.utf8)
        try ended(size: buffer.count - start, in: &buffer)
    }

    /// The next column's value, encoded as `MDSSampleCodec` encodes it (with the same errors).
    public mutating func append(_ value: MDSValue, into buffer: inout [UInt8]) throws(ShardError) {
        let start = buffer.count
        let spec = layout.columns[column]
        try MDSSampleCodec.encode(value, as: spec.encoding, column: spec.name, into: &buffer)
        if let fixed = layout.fixedSizes[column] {
            precondition(buffer.count - start == fixed, "MDS encoder wrote \(buffer.count - start) bytes for fixed-size \(spec.encoding.name)")
            column += 1
        } else {
            try ended(size: buffer.count - start, in: &buffer)
        }
    }

    /// Checks that every column was appended.
    public func finish() {
        precondition(column == layout.columns.count, "a sample needs a value for each of its \(layout.columns.count) columns")
    }

    private mutating func ended(size: Int, in buffer: inout [UInt8]) throws(ShardError) {
        guard size <= Int(UInt32.max) else {
            let name = layout.columns[column].name
            throw ShardError(.sampleTooLarge, column: name, "value of column '\(name)' is \(size) bytes; MDS stores lengths as u32 (max 4 GiB)")
        }
        let offset = headerStart + 4 * variableIndex
        buffer.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(size).littleEndian, toByteOffset: offset, as: UInt32.self) }
        variableIndex += 1
        column += 1
    }
}
