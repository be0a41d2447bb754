/// The one error type of the `Media` module: a reason code a pipeline can quarantine by, and a message a person can act
/// on (what failed, where: stream, timestamp, and FFmpeg's own diagnostic when it gave one).
///
/// How inputs are classified (stable, tested in `MediaCorpusTests`):
/// - `empty`: zero bytes.
/// - `unsupportedFormat`: no demuxer recognises the bytes with confidence (random bytes, a text file, a header damaged
///   beyond recognition), or an output container name FFmpeg does not know.
/// - `truncated`: the container is recognised but the data ends early: the demuxer asked for bytes past the end of the
///   input (e.g. an MP4 whose `mdat` runs past the end, so its `moov` is missing), a PNG/JPEG/GIF whose chunk structure
///   stops before its end marker, or a stream whose packets stop before the duration its header declares.
///   A truncated input is refused even when some frames decode, unless `MediaLimits.acceptTruncated` is set.
/// - `corrupt`: the container is recognised and complete, but its header or every packet of the stream is invalid;
///   or its structure stops making sense before any size runs past the end (noise behind a valid MP4 `ftyp`: the
///   "sizes" that noise declares say nothing about a missing end, so it is not `truncated`).
/// - `unsupportedCodec`: no decoder (or encoder) for the stream in this FFmpeg build.
/// - `noVideoStream` / `noAudioStream`: the operation needs a stream kind the input lacks.
/// - `tooLarge`: input bytes, declared picture size, or output size above `MediaLimits`; checked before decoding.
/// - `tooLong`: declared or decoded duration above `MediaLimits.maxDurationSeconds`.
/// - `timeout`: the wall-clock budget `MediaLimits.decodeTimeBudgetSeconds` ran out (the only retryable reason).
/// - `pathOutsideRoot`, `fileNotFound`: from `MediaRoot` and `.file` inputs.
/// - `decodeFailed` / `encodeFailed`: FFmpeg failed for another reason (out of memory, an internal error).
/// - `invalidOptions`: the caller's options are out of range (zero fps, empty window, …).
public struct MediaError: Error, Sendable, CustomStringConvertible {
    public enum Reason: String, Sendable, CaseIterable {
        case empty, corrupt, truncated, unsupportedFormat, unsupportedCodec, noVideoStream, noAudioStream, tooLarge,
            tooLong, timeout, pathOutsideRoot, fileNotFound, decodeFailed, encodeFailed, invalidOptions
    }

    public var reason: Reason
    public var message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    /// A timeout depends on machine load, so the same input may succeed later; every other reason is a property of
    /// the input or the options and will fail again.
    public var isRetryable: Bool { reason == .timeout }

    public var description: String { "\(reason.rawValue): \(message)" }
}
