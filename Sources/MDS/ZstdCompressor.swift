internal import CZstd

/// Owns one ZSTD_CCtx. A final class rather than a ~Copyable struct because the writer keeps it as an
/// optional (absent when uncompressed) and reuses it for every shard, which keeps zstd's window and tables
/// allocated once instead of once per shard.
final class ZstdCompressor {
    private let context: OpaquePointer
    private var outputBuffer: [UInt8]

    init(level: Int, path: String?) throws(ShardError) {
        guard Zstd.levels.contains(level) else {
            throw ShardError(.invalidConfiguration, "zstd level \(level) is outside \(Zstd.levels) (what mosaicml accepts)")
        }
        guard let context = ZSTD_createCCtx() else {
            throw ShardError(.compression, path: path, "cannot create a zstd compression context: out of memory")
        }
        self.context = context
        outputBuffer = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        let result = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level))
        if Zstd.isError(result) { throw Zstd.failure("set zstd level \(level) for", path: path, code: result) }
        // Every frame ends with a checksum of its content, so any zstd reader (mosaicml's, `zstd -t`) notices a changed byte.
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
    }

    deinit {
        ZSTD_freeCCtx(context)
    }

    /// Starts a new frame whose header will carry `pledgedSize`; zstd fails the frame if the input differs.
    func beginFrame(pledgedSize: UInt64, path: String?) throws(ShardError) {
        var result = ZSTD_CCtx_reset(context, ZSTD_reset_session_only)
        if Zstd.isError(result) { throw Zstd.failure("start compressing", path: path, code: result) }
        result = ZSTD_CCtx_setPledgedSrcSize(context, pledgedSize)
        if Zstd.isError(result) { throw Zstd.failure("start compressing", path: path, code: result) }
    }

    /// Compresses `input` and appends what zstd produces to `output`; with `endFrame` also flushes and closes
    /// the frame. zstd holds back up to a block of input, so `output` grows by at most about `input.count` plus
    /// one block: bounded by the caller's chunk size.
    func compress(_ input: UnsafeRawBufferPointer, endFrame: Bool, path: String?, appendingTo output: inout [UInt8])
        throws(ShardError)
    {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        let directive = endFrame ? ZSTD_e_end : ZSTD_e_continue
        let context = self.context
        while true {
            let (remaining, produced) = outputBuffer.withUnsafeMutableBytes { buffer in
                var outBuffer = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
                let remaining = ZSTD_compressStream2(context, &outBuffer, &inBuffer, directive)
                return (remaining, outBuffer.pos)
            }
            if Zstd.isError(remaining) { throw Zstd.failure("compress", path: path, code: remaining) }
            output.append(contentsOf: outputBuffer[0..<produced])
            // With e_end, 0 means the frame is complete; with e_continue, consuming all input is enough.
            if endFrame ? remaining == 0 : inBuffer.pos == inBuffer.size { return }
        }
    }
}
