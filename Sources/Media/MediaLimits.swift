/// Bounds applied to every input before and while it is decoded, so that hostile or broken media cannot make a worker
/// allocate gigabytes or spin forever.
public struct MediaLimits: Sendable {
    /// Size of the encoded input (`tooLarge`).
    public var maxInputBytes: Int
    /// width × height of any picture, declared or decoded (`tooLarge`); also handed to the decoders as `max_pixels`.
    public var maxPixels: Int
    /// Largest width or height of any picture (`tooLarge`).
    public var maxDimension: Int
    /// Declared duration, or decoded position (`tooLong`).
    public var maxDurationSeconds: Double
    /// Wall-clock time for one call (`timeout`), checked in the demux/decode loops and through FFmpeg's interrupt
    /// callback.
    public var decodeTimeBudgetSeconds: Double
    /// Size of what a call returns: frame tensors, PCM, encoded images, remuxed files (`tooLarge`).
    public var maxOutputBytes: Int
    /// When the input turns out truncated but some frames decoded, return what decoded instead of failing with
    /// `truncated`. Off by default: a dataset should not silently hold part of a clip.
    public var acceptTruncated: Bool

    public init(
        maxInputBytes: Int = 512 << 20, maxPixels: Int = 8192 * 5120, maxDimension: Int = 16384,
        maxDurationSeconds: Double = 3600, decodeTimeBudgetSeconds: Double = 60, maxOutputBytes: Int = 1 << 30,
        acceptTruncated: Bool = false
    ) {
        self.maxInputBytes = maxInputBytes
        self.maxPixels = maxPixels
        self.maxDimension = maxDimension
        self.maxDurationSeconds = maxDurationSeconds
        self.decodeTimeBudgetSeconds = decodeTimeBudgetSeconds
        self.maxOutputBytes = maxOutputBytes
        self.acceptTruncated = acceptTruncated
    }

    /// 512 MiB in, 40 MP (8192×5120) and 16384 px per side, one hour, 60 s of wall clock, 1 GiB out.
    public static let `default` = MediaLimits()
}
