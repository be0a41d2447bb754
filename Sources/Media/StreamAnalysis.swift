/// How much of FFmpeg's stream analysis (`avformat_find_stream_info`) runs after the container header is read.
enum StreamAnalysis: Equatable {
    /// As the ffmpeg CLI does: the analysis opens a decoder per stream and decodes the first frames (one or more),
    /// to learn what the header does not say (pixel format, decoder delay, timings for some containers).
    case full
    /// `DecodeMode.fast`: where `canSkipPictures` allows it, the video stream's pictures are not decoded by the
    /// analysis, and it stops after the first packets. On short clips that decode is a large share of the work (a
    /// second H.264 decoder opened, its first picture decoded, then thrown away: ~1 ms of ~12 ms per 2 s 320×240
    /// clip), and `videoFrames` needs none of what it finds out: each decoded frame carries its own pixel format. Other
    /// inputs get the full analysis.
    case withoutVideoPictures
    /// No analysis: only the container header.
    case none

    /// Whether skipping the pictures leaves `videoFrames` with the same streams, timestamps, durations and frame
    /// rates as the full analysis, so `fast` still picks the same frames. It does where the container's index holds
    /// every packet's timestamps and durations and the stream's frame rate (the MOV/MP4 family; not e.g. Matroska,
    /// whose average frame rate and durations may come from the analysis, nor raw streams, whose timestamps are
    /// guessed from the decoder delay), and where the decoder still reads the stream parameters (size, reorder depth)
    /// from its parameter sets when told to skip every picture (H.264 and HEVC: FFmpeg's
    /// `FF_CODEC_CAP_SKIP_FRAME_FILL_PARAM`).
    static func canSkipPictures(container: String, codec: String) -> Bool {
        let mov = container.split(separator: ",").contains("mov")
        return mov && (codec == "h264" || codec == "hevc")
    }
}
