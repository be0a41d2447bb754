import Foundation
import Media
import Testing

/// `Media.readAll`: the original bytes, under the same size checks as every decode.
@Suite struct ReadAllTests {
    @Test func aFileIsReadWhole() throws {
        let path = fixtures.clip
        #expect(try Media.readAll(.file(path), limits: .default) == fixtures.bytes(path))
    }

    @Test func emptyMissingAndNonRegularFilesAreRefused() throws {
        let empty = fixtures.write([], "empty-\(UUID().uuidString)")
        #expect(reason { try Media.readAll(.file(empty), limits: .default) } == .empty)
        #expect(reason { try Media.readAll(.file(fixtures.path("no-such-file")), limits: .default) } == .fileNotFound)
        #expect(reason { try Media.readAll(.file(fixtures.directory), limits: .default) } == .fileNotFound)
        // A FIFO would block a plain open(2) until a writer comes; it must be refused at once instead.
        let fifo = fixtures.path("fifo-\(UUID().uuidString)")
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(reason { try Media.readAll(.file(fifo), limits: .default) } == .fileNotFound)
    }

    /// The size is judged by fstat before reading: an 8 GiB sparse file (no disk blocks) over the default 512 MiB
    /// limit is refused without reading or allocating it, so quickly and without running out of memory.
    @Test func anOverLimitFileIsRefusedBeforeItIsRead() throws {
        let path = fixtures.path("sparse-\(UUID().uuidString)")
        let fd = open(path, O_CREAT | O_WRONLY, 0o600)
        #expect(fd >= 0)
        #expect(ftruncate(fd, 8 << 30) == 0)
        close(fd)
        defer { unlink(path) }
        let started = Date()
        #expect(reason { try Media.readAll(.file(path), limits: .default) } == .tooLarge)
        #expect(Date().timeIntervalSince(started) < 1)

        var limits = MediaLimits.default
        limits.maxInputBytes = 1000
        let small = fixtures.write([UInt8](repeating: 7, count: 1001), "small-\(UUID().uuidString)")
        #expect(reason { try Media.readAll(.file(small), limits: limits) } == .tooLarge)
        limits.maxInputBytes = 1001
        #expect(try Media.readAll(.file(small), limits: limits).count == 1001)
    }

    @Test func bytesInMemoryGetTheSameChecks() throws {
        var limits = MediaLimits.default
        limits.maxInputBytes = 4
        #expect(reason { try Media.readAll(.bytes([]), limits: limits) } == .empty)
        #expect(reason { try Media.readAll(.bytes([1, 2, 3, 4, 5]), limits: limits) } == .tooLarge)
        #expect(try Media.readAll(.bytes([1, 2, 3, 4]), limits: limits) == [1, 2, 3, 4])
    }

    /// Whatever the content: passthrough does not decode, so text is fine.
    @Test func contentIsNotJudged() throws {
        let text = Array("not media at all\n".utf8)
        let path = fixtures.write(text, "text-\(UUID().uuidString).txt")
        #expect(try Media.readAll(.file(path), limits: .default) == text)
    }
}
