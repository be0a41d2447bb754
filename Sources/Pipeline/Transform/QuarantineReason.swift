import Media
import MDS

/// Why a row went to quarantine, as the stable snake_case code written to quarantine.jsonl and counted in the
/// manifest's `quarantine.by_reason`. Data engineers group and alert on these codes, so a raw value never changes
/// once released; the README lists them all.
public enum QuarantineReason: String, Sendable, CaseIterable, Codable {
    case nullValue = "null_value"
    case nullKey = "null_key"
    case duplicateKey = "duplicate_key"
    case valueOutOfRange = "value_out_of_range"
    case invalidValue = "invalid_value"
    case invalidJSON = "invalid_json"
    case unmappedLabel = "unmapped_label"
    case invalidWindow = "invalid_window"
    case sampleTooLarge = "sample_too_large"
    case mediaEmpty = "media_empty"
    case mediaTruncated = "media_truncated"
    case mediaCorrupt = "media_corrupt"
    case mediaUnsupportedFormat = "media_unsupported_format"
    case mediaUnsupportedCodec = "media_unsupported_codec"
    case mediaNoVideoStream = "media_no_video_stream"
    case mediaNoAudioStream = "media_no_audio_stream"
    case mediaNoFrames = "media_no_frames"
    case mediaNoAudio = "media_no_audio"
    case mediaTooLarge = "media_too_large"
    case mediaTooLong = "media_too_long"
    case mediaTimeout = "media_timeout"
    case mediaPathOutsideRoot = "media_path_outside_root"
    case mediaFileNotFound = "media_file_not_found"
    case mediaPathWithoutRoot = "media_path_without_root"
    case mediaDecodeFailed = "media_decode_failed"
    case mediaEncodeFailed = "media_encode_failed"
    /// The transform's own media options were refused by FFmpeg (e.g. a size it cannot scale to).
    case mediaInvalidOptions = "media_invalid_options"

    /// The code as written to quarantine.jsonl.
    public var code: String { rawValue }

    /// Media failures keep FFmpeg's classification, prefixed so they group apart from value problems. Exhaustive on
    /// purpose: a new `MediaError.Reason` does not compile until it has a code here.
    public init(media reason: MediaError.Reason) {
        switch reason {
        case .empty: self = .mediaEmpty
        case .corrupt: self = .mediaCorrupt
        case .truncated: self = .mediaTruncated
        case .unsupportedFormat: self = .mediaUnsupportedFormat
        case .unsupportedCodec: self = .mediaUnsupportedCodec
        case .noVideoStream: self = .mediaNoVideoStream
        case .noAudioStream: self = .mediaNoAudioStream
        case .tooLarge: self = .mediaTooLarge
        case .tooLong: self = .mediaTooLong
        case .timeout: self = .mediaTimeout
        case .pathOutsideRoot: self = .mediaPathOutsideRoot
        case .fileNotFound: self = .mediaFileNotFound
        case .decodeFailed: self = .mediaDecodeFailed
        case .encodeFailed: self = .mediaEncodeFailed
        case .invalidOptions: self = .mediaInvalidOptions
        }
    }

    /// A sample the shard writer refused (the writer's own checks, after the transforms).
    public init(sampleError code: ShardError.Code) {
        switch code {
        case .valueOutOfRange: self = .valueOutOfRange
        case .sampleTooLarge: self = .sampleTooLarge
        default: self = .invalidValue
        }
    }
}

extension QuarantineEntry {
    /// An entry with a typed reason; the file keeps the reason's code as a plain string.
    init(key: String?, reason: QuarantineReason, message: String, column: String?) {
        self.init(key: key, reason: reason.code, message: message, column: column)
    }
}
