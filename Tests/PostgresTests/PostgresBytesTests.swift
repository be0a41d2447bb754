import Foundation
import Testing
@testable import Postgres

/// Counts how often an adopted buffer is released (from whatever thread drops the last value).
private final class ReleaseCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var released = 0
    var count: Int { lock.withLock { released } }
    func record() { lock.withLock { released += 1 } }
}

@Suite struct PostgresBytesTests {
    /// A malloc'ed buffer holding 0, 1, 2, … adopted by a PostgresBytes that frees it and counts the release.
    private func adopted(_ count: Int, counter: ReleaseCounter) -> PostgresBytes {
        let buffer = malloc(count)!
        for index in 0..<count { buffer.storeBytes(of: UInt8(truncatingIfNeeded: index), toByteOffset: index, as: UInt8.self) }
        return PostgresBytes(adopting: buffer, count: count) { pointer in
            counter.record()
            free(pointer)
        }
    }

    @Test func anAdoptedBufferIsReleasedOnceWhenItsLastSliceGoes() {
        let counter = ReleaseCounter()
        var slice: PostgresBytes? = nil
        do {
            let whole = adopted(100, counter: counter)
            slice = whole.slice(10..<20)
            #expect(slice!.sharesStorage(with: whole))
        }
        // The whole value is gone; its slice keeps the buffer alive, and reads the right bytes in place.
        #expect(counter.count == 0)
        #expect(Array(slice!) == Array(10..<20))
        #expect(slice!.startIndex == 0 && slice![0] == 10 && slice![9] == 19)
        slice = nil
        #expect(counter.count == 1)
    }

    @Test func slicesOfSlicesShareTheBufferAndAreIndexedFromZero() {
        let counter = ReleaseCounter()
        let whole = adopted(256, counter: counter)
        let outer = whole.slice(100..<200)
        let inner = outer.slice(5..<8)
        #expect(inner.sharesStorage(with: whole))
        #expect(Array(inner) == [105, 106, 107])
        #expect(inner == [105, 106, 107])
        #expect(outer.slice(3..<3).isEmpty)
        #expect(whole.slice(0..<256) == whole)
        #expect(counter.count == 0)
    }

    @Test func copiesOwnTheirBytesAndCompareByContent() {
        let source: [UInt8] = [1, 2, 3, 4]
        let copy = PostgresBytes(source)
        let literal: PostgresBytes = [1, 2, 3, 4]
        #expect(copy == literal)
        #expect(!copy.sharesStorage(with: literal))
        #expect(copy.hashValue == literal.hashValue)
        #expect(copy != [1, 2, 3])
        #expect(copy != [1, 2, 3, 5])
        #expect(PostgresBytes() == [])
        #expect(PostgresBytes().withUnsafeBytes { $0.count } == 0)
        #expect(copy.description == "4 bytes")
    }

    @Test func aCopyRowDecoderHandsEachByteaItsFieldOfTheMessage() throws {
        let columns = [PostgresColumn(name: "a", type: PostgresType(oid: 17, name: "bytea")),
                       PostgresColumn(name: "b", type: PostgresType(oid: 17, name: "bytea"))]
        var message: [UInt8] = CopyRowDecoder.signature + [0, 0, 0, 0, 0, 0, 0, 0]
        message += [0, 2]  // two fields
        message += [0, 0, 0, 3, 0xA, 0xB, 0xC]
        message += [0, 0, 0, 2, 0xD, 0xE]
        var decoder = CopyRowDecoder(columns: columns, formats: [.bytea, .bytea], statement: "s")
        var offsets: [Int] = []
        let row = try message.withUnsafeBytes { whole throws(PostgresError) in
            try decoder.decode(whole) { field in
                offsets.append(field.baseAddress! - whole.baseAddress!)
                return PostgresBytes(copying: field)
            }
        }
        #expect(offsets == [25, 32])
        #expect(row?.values == [.bytea([0xA, 0xB, 0xC]), .bytea([0xD, 0xE])])
    }

    /// A binary COPY's bytea values are slices of the row's message, adopted from libpq: no copy of the value.
    @Test func copyValuesAreSlicesOfLibpqsBuffer() throws {
        let connection = try TestDatabase.connect()
        var rows: [PostgresRow] = []
        try connection.streamBatches(
            "SELECT g, decode(repeat(lpad(to_hex(g), 2, '0'), 300000), 'hex') AS a, '\\x0102'::bytea AS b FROM generate_series(1, 3) g"
        ) { rows += $0 }
        #expect(rows.count == 3)
        for (index, row) in rows.enumerated() {
            guard case .bytea(let a) = row.values[1], case .bytea(let b) = row.values[2] else {
                Issue.record("row \(index) is not (int, bytea, bytea)")
                continue
            }
            #expect(a.count == 300_000 && a.allSatisfy { $0 == UInt8(index + 1) })
            #expect(b == [1, 2])
            #expect(a.sharesStorage(with: b), "the two values of a row share its message")
        }
        if case .bytea(let first) = rows[0].values[1], case .bytea(let second) = rows[1].values[1] {
            #expect(!first.sharesStorage(with: second), "each row has its own message")
        }
    }
}
