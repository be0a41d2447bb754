internal import CZstd

/// zstd helpers with a C-free surface. mosaicml's reader (python-zstd) refuses a frame whose header lacks the
/// content size, so everything here is about frames that carry it.
public enum Zstd {
    /// The levels mosaicml-streaming accepts in `zstd:<level>`.
    public static let levels: ClosedRange<Int> = 1...22

    /// The decompressed size recorded in the header of the frame at the start of `frame`, or nil when the
    /// header does not carry it or `frame` does not start with a valid zstd frame header.
    public static func frameContentSize(of frame: [UInt8]) -> UInt64? {
        let size = frame.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        // ZSTD_CONTENTSIZE_UNKNOWN and ZSTD_CONTENTSIZE_ERROR are (0ULL - 1) and (0ULL - 2), macros Swift cannot import.
        return size >= UInt64.max - 1 ? nil : size
    }

    /// One frame with the content size in its header.
    public static func compress(_ data: [UInt8], level: Int) throws(ShardError) -> [UInt8] {
        let compressor = try ZstdCompressor(level: level, path: nil)
        var output: [UInt8] = []
        try data.withBytes { (input) throws(ShardError) in
            try compressor.beginFrame(over: input, path: nil)
            try compressor.compress(upTo: input.count, endFrame: true, path: nil, appendingTo: &output)
        }
        return output
    }

    /// Decompresses one frame that carries its content size (what mosaicml writes and reads). `path` only
    /// names the file in error messages.
    public static func decompress(_ frame: [UInt8], path: String? = nil) throws(ShardError) -> [UInt8] {
        var decompressor = try ZstdDecompressor(path: path)
        return try decompressor.decompressFrame(frame, path: path)
    }

    static func errorName(_ code: Int) -> String {
        String(cString: ZSTD_getErrorName(code))
    }

    static func isError(_ code: Int) -> Bool {
        ZSTD_isError(code) != 0
    }

    static func failure(_ action: String, path: String?, code: Int) -> ShardError {
        let subject = path.map { " \($0)" } ?? ""
        return ShardError(.compression, path: path, "cannot \(action)\(subject): zstd: \(errorName(code))")
    }
}
