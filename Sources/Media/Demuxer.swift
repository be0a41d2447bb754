internal import CFFmpeg

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One opened input: the custom AVIOContext (and its buffer) over a `ByteSource`, and the AVFormatContext reading
/// through it. A single owner for both because their order of release matters: the format context first, since it
/// still points at the I/O context.
final class Demuxer {
    let source: ByteSource
    let deadline: Deadline
    let limits: MediaLimits
    let log: LogCapture
    private var io: UnsafeMutablePointer<AVIOContext>?
    private var format: UnsafeMutablePointer<AVFormatContext>?

    private init(source: ByteSource, deadline: Deadline, limits: MediaLimits, log: LogCapture) {
        self.source = source
        self.deadline = deadline
        self.limits = limits
        self.log = log
    }

    deinit {
        if format != nil {
            avformat_close_input(&format)
        }
        if let io {
            // avio may have replaced the buffer we gave it, so free whatever it holds now.
            av_free(io.pointee.buffer)
            io.pointee.buffer = nil
            var pointer: UnsafeMutablePointer<AVIOContext>? = io
            avio_context_free(&pointer)
        }
    }

    var context: UnsafeMutablePointer<AVFormatContext> { format! }

    /// Opens `source`, checks the declared sizes and duration against `limits`, then runs FFmpeg's stream analysis
    /// as `analysis` says, with the decoders capped by `max_pixels`, and checks again.
    static func open(
        _ source: ByteSource, limits: MediaLimits, deadline: Deadline, log: LogCapture,
        analysis: StreamAnalysis = .full
    ) throws(MediaError) -> Demuxer {
        let demuxer = Demuxer(source: source, deadline: deadline, limits: limits, log: log)
        try demuxer.openInput()
        try demuxer.checkDeclaredLimits(stage: "container header")
        if analysis != .none {
            try demuxer.analyze(analysis)
            try demuxer.checkDeclaredLimits(stage: "stream analysis")
        }
        return demuxer
    }

    private func openInput() throws(MediaError) {
        try deadline.check("opening \(source.label)")
        let bufferSize = 1 << 16
        guard let buffer = av_malloc(bufferSize) else {
            throw MediaError(.decodeFailed, "out of memory allocating the I/O buffer")
        }
        guard
            let io = avio_alloc_context(
                buffer.assumingMemoryBound(to: UInt8.self), Int32(bufferSize), 0,
                Unmanaged.passUnretained(source).toOpaque(), sourceRead, nil, sourceSeek)
        else {
            av_free(buffer)
            throw MediaError(.decodeFailed, "out of memory allocating the I/O context")
        }
        self.io = io

        var probed: UnsafePointer<AVInputFormat>?
        let score = av_probe_input_buffer2(io, &probed, "", nil, 0, 0)
        if deadline.expired { try deadline.check("probing \(source.label)") }
        guard score >= 0, let probed else {
            throw MediaError(
                .unsupportedFormat, "no demuxer recognises \(source.label): \(averrorText(score))\(log.suffix)")
        }
        let name = cString(probed.pointee.name) ?? "?"
        if score <= Demuxer.weakProbeScore {
            throw MediaError(
                .unsupportedFormat,
                "\(source.label) is not a recognisable media file (best guess \(name) with probe score \(score))")
        }

        if name.split(separator: ",").contains(where: { Demuxer.referencingFormats.contains(String($0)) }) {
            throw MediaError(
                .unsupportedFormat,
                "\(source.label) is a \(name) playlist or reference list; media it points to is never opened")
        }

        guard let allocated = avformat_alloc_context() else {
            throw MediaError(.decodeFailed, "out of memory allocating the format context")
        }
        allocated.pointee.pb = io
        allocated.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        allocated.pointee.interrupt_callback = AVIOInterruptCB(
            callback: interruptCallback, opaque: Unmanaged.passUnretained(deadline).toOpaque())
        // Playlists and references inside a file (HLS, concat, MOV data references…) would otherwise open other
        // URLs or local files: untrusted bytes must not read anything but themselves.
        allocated.pointee.io_open = refuseNestedOpen
        allocated.pointee.opaque = Unmanaged.passUnretained(source).toOpaque()
        format = allocated
        let result = avformat_open_input(&format, "", probed, nil)
        if result < 0 {
            // avformat_open_input freed the context and set `format` to nil; the I/O context is still ours.
            if deadline.expired || result == averrorExit { try deadline.check("reading the \(name) header") }
            throw classifyFailure(result, while: "reading the \(name) header")
        }
    }

    /// Demuxers whose input is a list of other resources (files, URLs, network sessions). Refused up front; the
    /// `io_open` refusal stays as the safety net for any other demuxer that tries to open something.
    static let referencingFormats: Set<String> = [
        "hls", "dash", "concat", "sdp", "rtsp", "rtp", "webm_dash_manifest", "imf", "hds", "ffmetadata",
    ]

    /// A guess at or below this score is refused. Damaged files and random bytes sometimes look like MPEG-PS or MP2
    /// with exactly 25 (an MP4 with its first 64 bytes zeroed does); real files score higher: MP4/Matroska/Ogg/GIF
    /// 100, WAV/WebP 99, raw H.264, ADTS, MP3, JPEG, BMP, TIFF 51, MPEG-TS 50, a short MPEG-PS 26. The cost is that
    /// an MP3 of under ~0.2 s without an ID3 tag is refused too.
    static let weakProbeScore: Int32 = AVPROBE_SCORE_RETRY

    private func analyze(_ analysis: StreamAnalysis) throws(MediaError) {
        let fmt = context
        let count = Int(fmt.pointee.nb_streams)
        var options = [OpaquePointer?](repeating: nil, count: count)
        for index in 0..<count {
            av_dict_set(&options[index], "max_pixels", String(limits.maxPixels), 0)
            av_dict_set(&options[index], "threads", "1", 0)
        }
        if analysis == .withoutVideoPictures, let video = firstStream(of: AVMEDIA_TYPE_VIDEO),
            let codec = cString(avcodec_get_name(stream(video).pointee.codecpar.pointee.codec_id)),
            StreamAnalysis.canSkipPictures(container: containerName, codec: codec)
        {
            // The analysis decoder parses the parameter sets but decodes no picture, and the analysis stops after
            // the first packets (1 µs is reached by the second): the MP4 index has the timestamps and durations.
            av_dict_set(&options[video], "skip_frame", "all", 0)
            fmt.pointee.max_analyze_duration = 1
        }
        defer {
            for index in 0..<count { av_dict_free(&options[index]) }
        }
        let result = options.withUnsafeMutableBufferPointer { buffer in
            avformat_find_stream_info(fmt, count == 0 ? nil : buffer.baseAddress)
        }
        if deadline.expired || result == averrorExit { try deadline.check("analysing the streams of \(source.label)") }
        if log.exceededMaxPixels {
            throw MediaError(.tooLarge, "a picture in \(source.label) is larger than the limit\(log.suffix)")
        }
        // Like the ffmpeg CLI, a failed analysis is only fatal when it found no stream at all.
        if result < 0 && fmt.pointee.nb_streams == 0 {
            throw classifyFailure(result, while: "analysing the streams")
        }
    }

    /// Hostile headers are refused here, before a decoder allocates anything for them.
    func checkDeclaredLimits(stage: String) throws(MediaError) {
        let fmt = context
        for index in 0..<Int(fmt.pointee.nb_streams) {
            let stream = fmt.pointee.streams[index]!
            let par = stream.pointee.codecpar!
            try checkPictureSize(
                width: Int(par.pointee.width), height: Int(par.pointee.height), limits: limits,
                what: "stream \(index) (\(stage))")
            if stream.pointee.duration != noPTS && stream.pointee.duration > 0 {
                let seconds = Double(stream.pointee.duration) * q2d(stream.pointee.time_base)
                try checkDuration(seconds, what: "stream \(index) declares")
            }
        }
        if fmt.pointee.duration != noPTS && fmt.pointee.duration > 0 {
            try checkDuration(Double(fmt.pointee.duration) / Double(AV_TIME_BASE), what: "the container declares")
        }
    }

    func checkDuration(_ seconds: Double, what: String) throws(MediaError) {
        if seconds > limits.maxDurationSeconds {
            throw MediaError(
                .tooLong,
                "\(what) a duration of \(formatSeconds(seconds)) s, over the limit of \(limits.maxDurationSeconds) s")
        }
    }

    /// A recognised container that fails: truncated when the demuxer ran out of bytes, corrupt otherwise.
    func classifyFailure(_ code: Int32, while doing: String) -> MediaError {
        let text = "\(averrorText(code))\(log.suffix)"
        if let url = source.refusedNestedOpen {
            return MediaError(
                .unsupportedFormat,
                "\(source.label) (\(containerNameIfOpen)) refers to another resource (\(url)); playlists and references are not followed")
        }
        if log.exceededMaxPixels {
            return MediaError(.tooLarge, "a picture in \(source.label) is larger than the limit while \(doing)\(log.suffix)")
        }
        // Running into the end of a small file while parsing a bad header is normal, so only an explicit end of
        // file or a seek past the end counts as truncation here.
        if code == averrorEOF || source.seekedPastEnd {
            return MediaError(.truncated, "\(source.label) ends early, while \(doing): \(text)")
        }
        return MediaError(.corrupt, "\(source.label) is damaged, while \(doing): \(text)")
    }

    // MARK: Streams

    var containerName: String { cString(context.pointee.iformat.pointee.name) ?? "unknown" }

    private var containerNameIfOpen: String {
        guard let format, let name = format.pointee.iformat?.pointee.name else { return "unknown format" }
        return String(cString: name)
    }

    /// The origin of every `TimeWindow`, in stream seconds: the container's start time, so streams whose clock does
    /// not start at zero (MPEG-TS) still have windows relative to their beginning. A negative start (Matroska stores
    /// AAC's encoder delay as a negative first timestamp) counts as zero: those samples are discarded by the decoder,
    /// and using it would shift every video frame by the delay.
    var startSeconds: Double {
        let start = context.pointee.start_time
        return start == noPTS || start < 0 ? 0 : Double(start) / Double(AV_TIME_BASE)
    }

    var durationSeconds: Double? {
        let duration = context.pointee.duration
        return duration == noPTS || duration <= 0 ? nil : Double(duration) / Double(AV_TIME_BASE)
    }

    /// Whether the container's duration was measured (timestamps, stream headers) rather than guessed from bitrate.
    var durationIsReliable: Bool {
        durationSeconds != nil && context.pointee.duration_estimation_method != AVFMT_DURATION_FROM_BITRATE
    }

    func stream(_ index: Int) -> UnsafeMutablePointer<AVStream> {
        context.pointee.streams[index]!
    }

    /// The first stream of a kind; cover art (attached pictures) counts as video only when `allowCoverArt`.
    func firstStream(of type: AVMediaType, allowCoverArt: Bool = false) -> Int? {
        let fmt = context
        var coverArt: Int?
        for index in 0..<Int(fmt.pointee.nb_streams) {
            let stream = fmt.pointee.streams[index]!
            guard stream.pointee.codecpar.pointee.codec_type == type else { continue }
            if stream.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC != 0 {
                if coverArt == nil { coverArt = index }
                continue
            }
            return index
        }
        return allowCoverArt ? coverArt : nil
    }

    /// Lets the demuxer skip every stream but `index` (no packets are allocated for them).
    func discardAll(except index: Int) {
        for other in 0..<Int(context.pointee.nb_streams) where other != index {
            stream(other).pointee.discard = AVDISCARD_ALL
        }
    }

    /// Seeks so that decoding `streamIndex` yields the last keyframe at or before `seconds` first. A failed seek is
    /// not an error: the caller then decodes from where it is, which is only slower. A window may start after the
    /// end of the data, so a seek past the end is the caller's doing, not a sign of truncation.
    func seek(stream streamIndex: Int, toSeconds seconds: Double) {
        let stream = self.stream(streamIndex)
        let timeBase = stream.pointee.time_base
        guard timeBase.num > 0, timeBase.den > 0 else { return }
        let target = Int64(((seconds + startSeconds) / q2d(timeBase)).rounded(.down))
        let wasPastEnd = source.seekedPastEnd
        av_seek_frame(context, Int32(streamIndex), target, AVSEEK_FLAG_BACKWARD)
        source.seekedPastEnd = wasPastEnd
        sought = true
    }

    /// Whether `seek` ran: then finding no packet means the window starts after the data, not that data is missing.
    private(set) var sought = false
}

func checkPictureSize(width: Int, height: Int, limits: MediaLimits, what: String) throws(MediaError) {
    if width > limits.maxDimension || height > limits.maxDimension {
        throw MediaError(
            .tooLarge, "\(what) declares a \(width)x\(height) picture; the largest side allowed is \(limits.maxDimension)")
    }
    if width > 0 && height > 0 && width * height > limits.maxPixels {
        throw MediaError(
            .tooLarge, "\(what) declares a \(width)x\(height) picture, over the limit of \(limits.maxPixels) pixels")
    }
}

func formatSeconds(_ seconds: Double) -> String {
    let millis = (seconds * 1000).rounded()
    return String(millis / 1000)
}

extension LogCapture {
    /// av_image_check_size2's wording when a decoder refuses a picture over `max_pixels` ("exceeds specified max pixel
    /// count"), or one too large for FFmpeg to address at all ("Picture size WxH is invalid" with both sides set).
    var exceededMaxPixels: Bool {
        if contains("exceeds specified max pixel count") { return true }
        return lines.contains(where: { (line: String) -> Bool in
            let words = line.split(separator: " ")
            guard line.contains("is invalid"),
                let at = words.indices.first(where: { $0 + 2 < words.count && words[$0] == "Picture" && words[$0 + 1] == "size" })
            else { return false }
            let size = words[at + 2].split(separator: "x")
            guard size.count == 2, let width = Int(size[0]), let height = Int(size[1]) else { return false }
            return width > 0 && height > 0
        })
    }
}

private func refuseNestedOpen(
    _ context: UnsafeMutablePointer<AVFormatContext>?, _ io: UnsafeMutablePointer<UnsafeMutablePointer<AVIOContext>?>?,
    _ url: UnsafePointer<CChar>?, _ flags: Int32, _ options: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    if let opaque = context?.pointee.opaque {
        let source = Unmanaged<ByteSource>.fromOpaque(opaque).takeUnretainedValue()
        if source.refusedNestedOpen == nil { source.refusedNestedOpen = cString(url) ?? "?" }
    }
    return etl_averror(EPERM)
}
