internal import CFFmpeg

/// Decoding and normalisation of user-submitted media through FFmpeg's libraries.
///
/// Every function is synchronous and blocking, and shares nothing with other calls: run many in parallel on worker
/// threads. Inputs are read through a custom AVIOContext (bytes in memory, or a file through `pread`), never through
/// FFmpeg's protocols, and nested opens (playlists, references) are refused. FFmpeg prints nothing unless
/// `setLibraryLogLevel` says so; its error lines end up in `MediaError.message` instead.
public enum Media {
    /// Container and stream parameters after FFmpeg's stream analysis; nothing is decoded beyond what that analysis
    /// needs, so damaged pixel data is only found by the decoding functions. `rotation` comes from the
    /// container; EXIF orientation of a still JPEG is per picture, so it is applied by `image` and `videoFrames` but
    /// not reported here.
    public static func probe(_ input: MediaInput, limits: MediaLimits) throws(MediaError) -> MediaProbe {
        let session = try Session(input, limits: limits)
        let demuxer = session.demuxer
        var probe = MediaProbe(container: demuxer.containerName, durationSeconds: demuxer.durationSeconds)
        // Cover art is not reported as video: `videoFrames` would refuse it (`image` does use it).
        if let index = demuxer.firstStream(of: AVMEDIA_TYPE_VIDEO) {
            let stream = demuxer.stream(index)
            let par = stream.pointee.codecpar!
            probe.videoCodec = cString(avcodec_get_name(par.pointee.codec_id))
            probe.width = par.pointee.width > 0 ? Int(par.pointee.width) : nil
            probe.height = par.pointee.height > 0 ? Int(par.pointee.height) : nil
            let rate = stream.pointee.avg_frame_rate.num > 0 ? stream.pointee.avg_frame_rate : stream.pointee.r_frame_rate
            probe.fps = rate.num > 0 && rate.den > 0 ? q2d(rate) : nil
            probe.rotation = Orientation.ffprobeRotation(stream: stream)
        }
        if let index = demuxer.firstStream(of: AVMEDIA_TYPE_AUDIO) {
            let par = demuxer.stream(index).pointee.codecpar!
            probe.audioCodec = cString(avcodec_get_name(par.pointee.codec_id))
            probe.sampleRate = par.pointee.sample_rate > 0 ? Int(par.pointee.sample_rate) : nil
            probe.channels = par.pointee.ch_layout.nb_channels > 0 ? Int(par.pointee.ch_layout.nb_channels) : nil
        }
        return probe
    }
}

/// What every operation sets up first: the log capture for this thread, the deadline, the byte source with its size
/// check, a header sniff for images, and the demuxer.
struct Session: ~Copyable {
    let log: LogScope
    let demuxer: Demuxer

    init(_ input: MediaInput, limits: MediaLimits, analysis: StreamAnalysis = .full) throws(MediaError) {
        let log = LogScope()
        let deadline = Deadline(seconds: limits.decodeTimeBudgetSeconds)
        let source = try ByteSource.from(input, limits: limits)
        try ImageHeader.check(source, limits: limits)
        try ContainerHeader.check(source, limits: limits)
        demuxer = try Demuxer.open(source, limits: limits, deadline: deadline, log: log.capture, analysis: analysis)
        self.log = log
    }
}
