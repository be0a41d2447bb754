internal import CZstd

/// Owns one ZSTD_CCtx, which compresses frames whose whole content is at one address (see `beginFrame(over:path:)`).
/// A final class rather than a ~Copyable struct because the writer keeps it as an optional (absent when uncompressed)
/// and reuses it for every shard, which keeps zstd's tables allocated once instead of once per shard.
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
        var result = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level))
        if Zstd.isError(result) { throw Zstd.failure("set zstd level \(level) for", path: path, code: result) }
        // Every frame ends with a checksum of its content, so any zstd reader (mosaicml's, `zstd -t`) notices a changed byte.
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
        result = ZSTD_CCtx_setParameter(context, etl_zstd_stable_input_parameter(), 1)
        if Zstd.isError(result) { throw Zstd.failure("set up compressing for", path: path, code: result) }
    }

    deinit {
        ZSTD_freeCCtx(context)
    }

    /// The frame being compressed: its whole input, and how much of it zstd has been offered and has taken.
    private var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)

    /// Starts a frame over `content`, which must stay in place and unchanged until the frame ends: zstd reads it where
    /// it is (`ZSTD_c_stableInBuffer`) instead of copying it into a window buffer of its own. Besides the copy, that
    /// spares it the slower match search of a wrapped-around window: on MDS shards at level 3 it costs about a quarter
    /// less CPU. The frame is then what one-shot `ZSTD_compress2` makes of `content`. The header carries the content
    /// size (mosaicml's reader needs it).
    func beginFrame(over content: UnsafeRawBufferPointer, path: String?) throws(ShardError) {
        var result = ZSTD_CCtx_reset(context, ZSTD_reset_session_only)
        if Zstd.isError(result) { throw Zstd.failure("start compressing", path: path, code: result) }
        result = ZSTD_CCtx_setPledgedSrcSize(context, UInt64(content.count))
        if Zstd.isError(result) { throw Zstd.failure("start compressing", path: path, code: result) }
        input = ZSTD_inBuffer(src: content.baseAddress, size: 0, pos: 0)
    }

    /// Offers the frame's content up to `end` (a position in it, never less than before) and appends what zstd
    /// produces to `output`; with `endFrame` (`end` must then be the content's end) also flushes and closes the frame.
    /// zstd holds back up to a block, so `output` grows by at most about the new input plus one block.
    func compress(upTo end: Int, endFrame: Bool, path: String?, appendingTo output: inout [UInt8]) throws(ShardError) {
        precondition(end >= input.size, "a frame's input only grows")
        input.size = end
        let directive = endFrame ? ZSTD_e_end : ZSTD_e_continue
        let context = self.context
        while true {
            let (remaining, produced) = outputBuffer.withUnsafeMutableBytes { buffer in
                var outBuffer = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
                let remaining = ZSTD_compressStream2(context, &outBuffer, &input, directive)
                return (remaining, outBuffer.pos)
            }
            if Zstd.isError(remaining) { throw Zstd.failure("compress", path: path, code: remaining) }
            output.append(contentsOf: outputBuffer[0..<produced])
            // With e_end, 0 means the frame is complete; with e_continue, consuming all input is enough.
            if endFrame ? remaining == 0 : input.pos == input.size { return }
        }
    }
}
