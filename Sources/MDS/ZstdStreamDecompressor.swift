internal import CZstd

/// Decompresses one zstd frame chunk by chunk, so a shard of any size is read in bounded memory (unlike
/// `ZstdDecompressor`, which needs the whole frame and its whole output at once). A final class: it owns one
/// ZSTD_DCtx, freed in `deinit`.
final class ZstdStreamDecompressor {
    private let context: OpaquePointer
    private var outputBuffer: [UInt8]
    /// True once zstd has decoded and flushed the whole frame (and checked its checksum, when it has one).
    private(set) var frameComplete = false

    init(path: String?) throws(ShardError) {
        guard let context = ZSTD_createDCtx() else {
            throw ShardError(.compression, path: path, "cannot create a zstd decompression context: out of memory")
        }
        self.context = context
        outputBuffer = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
    }

    deinit {
        ZSTD_freeDCtx(context)
    }

    /// Feeds `input` to zstd and hands every decompressed chunk to `output`. Bytes after the end of the frame
    /// are an error: a shard is exactly one frame.
    func decompress(_ input: UnsafeRawBufferPointer, path: String?, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        let context = self.context
        while inBuffer.pos < inBuffer.size || !frameComplete {
            if frameComplete {
                throw ShardError(.compression, path: path,
                                 "cannot decompress \(path ?? "zstd data"): bytes follow the end of its zstd frame")
            }
            let (result, produced) = outputBuffer.withUnsafeMutableBytes { buffer in
                var outBuffer = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
                let result = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
                return (result, outBuffer.pos)
            }
            if Zstd.isError(result) { throw Zstd.failure("decompress", path: path, code: result) }
            if produced > 0 { try outputBuffer.withUnsafeBytes { try output(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
            if result == 0 { frameComplete = true }
            // All input consumed and the output buffer not filled: zstd needs more input.
            if inBuffer.pos == inBuffer.size && produced < outputBuffer.count && !frameComplete { return }
        }
    }
}
