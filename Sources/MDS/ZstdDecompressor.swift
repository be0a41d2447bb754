internal import CZstd

/// Owns one ZSTD_DCtx for the duration of a read.
struct ZstdDecompressor: ~Copyable {
    private let context: OpaquePointer

    init(path: String?) throws(ShardError) {
        guard let context = ZSTD_createDCtx() else {
            throw ShardError(.compression, path: path, "cannot create a zstd decompression context: out of memory")
        }
        self.context = context
    }

    deinit {
        ZSTD_freeDCtx(context)
    }

    /// Decompresses a file holding exactly one frame with its content size in the header, which is what
    /// mosaicml writes and the only thing its reader accepts.
    mutating func decompressFrame(_ frame: [UInt8], path: String?, maximumSize: UInt64 = UInt64(UInt32.max))
        throws(ShardError) -> [UInt8]
    {
        let subject = path ?? "zstd data"
        guard let contentSize = Zstd.frameContentSize(of: frame) else {
            throw ShardError(
                .compression, path: path,
                "cannot decompress \(subject): not a zstd frame with its content size in the header "
                    + "(mosaicml-streaming cannot read it either)")
        }
        guard contentSize <= maximumSize else {
            throw ShardError(
                .compression, path: path,
                "cannot decompress \(subject): its header claims \(contentSize) bytes, more than a shard can hold")
        }
        let frameSize = frame.withUnsafeBytes { ZSTD_findFrameCompressedSize($0.baseAddress, $0.count) }
        if Zstd.isError(frameSize) { throw Zstd.failure("decompress", path: path, code: frameSize) }
        guard frameSize == frame.count else {
            throw ShardError(
                .compression, path: path,
                "cannot decompress \(subject): \(frame.count - frameSize) bytes follow the first zstd frame")
        }
        let context = self.context
        var output = [UInt8](repeating: 0, count: Int(contentSize))
        let written = output.withUnsafeMutableBytes { out in
            frame.withUnsafeBytes { input in
                ZSTD_decompressDCtx(context, out.baseAddress, out.count, input.baseAddress, input.count)
            }
        }
        if Zstd.isError(written) { throw Zstd.failure("decompress", path: path, code: written) }
        guard written == output.count else {
            throw ShardError(
                .compression, path: path,
                "cannot decompress \(subject): frame produced \(written) bytes, its header says \(contentSize)")
        }
        return output
    }
}
