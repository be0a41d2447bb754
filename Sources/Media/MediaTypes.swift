/// Where media comes from. `.file` paths are opened as given; use `MediaRoot.resolve` for paths that come from data.
public enum MediaInput: Sendable {
    case bytes([UInt8])
    case file(String)
}

/// What `Media.probe` reads from the container headers (after FFmpeg's stream analysis).
public struct MediaProbe: Sendable, Equatable {
    /// FFmpeg's demuxer name, e.g. `"mov,mp4,m4a,3gp,3g2,mj2"`, `"matroska,webm"`, `"png_pipe"`, `"wav"`.
    public var container: String
    public var durationSeconds: Double?
    public var videoCodec: String?
    /// Stored picture size, before rotation (see `rotation`).
    public var width: Int?
    public var height: Int?
    public var fps: Double?
    /// The display matrix's rotation exactly as `ffprobe -show_streams` prints it in the stream's side data
    /// (`rotation=`): whole degrees in -180…180, counter-clockwise positive, 0 without a matrix. Turning the stored
    /// picture counter-clockwise by this angle shows it upright, which is what the `ffmpeg` CLI's autorotation (and
    /// `videoFrames`) does: `90` means a portrait picture stored sideways, `-90` the other way round, `180` or `-180`
    /// upside down (ffprobe prints either, depending on the matrix). Angles that are not a multiple of 90 are reported
    /// but not applied by `videoFrames`.
    public var rotation: Int
    public var audioCodec: String?
    public var sampleRate: Int?
    public var channels: Int?

    public init(
        container: String, durationSeconds: Double? = nil, videoCodec: String? = nil, width: Int? = nil,
        height: Int? = nil, fps: Double? = nil, rotation: Int = 0, audioCodec: String? = nil,
        sampleRate: Int? = nil, channels: Int? = nil
    ) {
        self.container = container
        self.durationSeconds = durationSeconds
        self.videoCodec = videoCodec
        self.width = width
        self.height = height
        self.fps = fps
        self.rotation = rotation
        self.audioCodec = audioCodec
        self.sampleRate = sampleRate
        self.channels = channels
    }
}

/// How a picture meets a target size.
public enum ResizeMode: String, Sendable {
    /// Keep the aspect ratio and letterbox with black (the picture is centred).
    case pad
    /// Keep the aspect ratio, fill the target, and cut the overflow equally on both sides.
    case crop
    /// Scale each axis independently.
    case stretch
}

public enum PixelFormat: String, Sendable {
    case rgb24, gray8

    public var channels: Int { self == .rgb24 ? 3 : 1 }
}

/// A span of the media timeline in seconds, measured from the container's start time (so 0 is the first moment of
/// the earliest stream; a negative start, such as Matroska's AAC encoder delay, counts as 0). `endSeconds == nil`
/// means to the end. The same timeline is used for video and audio, so windows of both line up.
public struct TimeWindow: Sendable, Equatable {
    public var startSeconds: Double
    public var endSeconds: Double?

    public init(startSeconds: Double = 0, endSeconds: Double? = nil) {
        self.startSeconds = startSeconds
        self.endSeconds = endSeconds
    }
}

/// How faithfully `videoFrames` decodes.
public enum DecodeMode: String, Sendable, CaseIterable {
    /// Every frame decoded as the codec specifies: the frames are bit-identical to the ffmpeg CLI's.
    case exact
    /// For training data that does not need bit-exact pixels. The same frames are picked (same timestamps, same
    /// count), but:
    /// - the in-loop deblocking filter is skipped and the decoder may take non-bit-exact shortcuts
    ///   (`AV_CODEC_FLAG2_FAST`);
    /// - non-reference frames (B-frames) that no output frame is taken from are not decoded at all, and reading
    ///   stops after the last sample time;
    /// - the resize uses swscale's area filter instead of bicubic (`ScaleFilter.area`, about half the cost);
    /// - on MP4/MOV with H.264 or HEVC, FFmpeg's stream analysis does not decode the first picture
    ///   (`StreamAnalysis.withoutVideoPictures`).
    /// Pixels differ from `exact`: on x264 clips (deblocking on) the worst frame is 34–40 dB PSNR when resized
    /// (area vs bicubic alone is about 37 dB), 40–45 dB at the source size; tested ≥ 32 dB per frame. CPU per clip
    /// (2 s 320×240 H.264, 10 frames at 112×112): 1.38× less without B-frames, 1.62× less with 3
    /// (`scripts/bench-fast-decode`).
    case fast
}

public struct VideoFramesOptions: Sendable {
    public var fps: Double
    public var width: Int
    public var height: Int
    public var resize: ResizeMode
    public var pixelFormat: PixelFormat
    public var maxFrames: Int
    public var window: TimeWindow?
    public var decode: DecodeMode

    public init(
        fps: Double, width: Int, height: Int, resize: ResizeMode = .pad, pixelFormat: PixelFormat = .rgb24,
        maxFrames: Int, window: TimeWindow? = nil, decode: DecodeMode = .exact
    ) {
        self.fps = fps
        self.width = width
        self.height = height
        self.resize = resize
        self.pixelFormat = pixelFormat
        self.maxFrames = maxFrames
        self.window = window
        self.decode = decode
    }
}

/// Frames as one (T, H, W, C) uint8 array in C order: frame, row, column, channel.
public struct FrameTensor: Sendable, Equatable {
    public var frames: Int
    public var height: Int
    public var width: Int
    public var channels: Int
    public var pixels: [UInt8]
    /// Presentation time in seconds (timeline of `TimeWindow`) of the decoded frame each output frame was taken from.
    public var sourceTimestamps: [Double]

    public init(frames: Int, height: Int, width: Int, channels: Int, pixels: [UInt8], sourceTimestamps: [Double] = []) {
        self.frames = frames
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
        self.sourceTimestamps = sourceTimestamps
    }

    /// The value of one channel of one pixel.
    public func value(frame: Int, y: Int, x: Int, channel: Int = 0) -> UInt8 {
        pixels[((frame * height + y) * width + x) * channels + channel]
    }
}

public enum SampleFormat: String, Sendable {
    /// Signed 16-bit little-endian.
    case s16
    /// 32-bit IEEE float little-endian, nominally in [-1, 1].
    case f32

    public var bytesPerSample: Int { self == .s16 ? 2 : 4 }
}

public struct AudioOptions: Sendable {
    public var sampleRate: Int
    public var channels: Int
    public var format: SampleFormat
    public var window: TimeWindow?
    /// Keep at most this much audio from the window start (or from the first sample when there is no window).
    public var maxDurationSeconds: Double?

    public init(
        sampleRate: Int, channels: Int, format: SampleFormat = .s16, window: TimeWindow? = nil,
        maxDurationSeconds: Double? = nil
    ) {
        self.sampleRate = sampleRate
        self.channels = channels
        self.format = format
        self.window = window
        self.maxDurationSeconds = maxDurationSeconds
    }
}

/// Interleaved PCM, little-endian; `frameCount` samples per channel.
public struct PCMAudio: Sendable, Equatable {
    public var sampleRate: Int
    public var channels: Int
    public var format: SampleFormat
    public var frameCount: Int
    public var data: [UInt8]

    public init(sampleRate: Int, channels: Int, format: SampleFormat, frameCount: Int, data: [UInt8]) {
        self.sampleRate = sampleRate
        self.channels = channels
        self.format = format
        self.frameCount = frameCount
        self.data = data
    }

    public var durationSeconds: Double { Double(frameCount) / Double(sampleRate) }
}

public enum ImageFormat: Sendable, Equatable {
    case png
    /// quality 1…100, mapped linearly onto FFmpeg's MJPEG qscale 31…2 (100 is the best FFmpeg's encoder does).
    case jpeg(quality: Int)
}

/// `width` and `height` both nil keep the picture's (upright) size; only one given scales the other side keeping the
/// aspect ratio (then `resize` does not matter); both given apply `resize`.
public struct ImageOptions: Sendable {
    public var width: Int?
    public var height: Int?
    public var resize: ResizeMode
    public var format: ImageFormat

    public init(width: Int? = nil, height: Int? = nil, resize: ResizeMode = .pad, format: ImageFormat = .png) {
        self.width = width
        self.height = height
        self.resize = resize
        self.format = format
    }
}
