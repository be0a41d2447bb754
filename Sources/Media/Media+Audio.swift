internal import CFFmpeg

extension Media {
    /// Decodes the first audio stream and resamples it to `sampleRate`/`channels`/`format`, interleaved.
    ///
    /// The resampler's delay is flushed at the end, so a whole stream of duration D yields round(D × sampleRate)
    /// frames, ±1 for the resampler's rounding. With a window, output sample i stands for time i / sampleRate on the
    /// container timeline (anchored on the first decoded frame's timestamp, then counted contiguously), and exactly the
    /// samples with round(start × rate) ≤ i < round(end × rate) are kept; `maxDurationSeconds` keeps at most
    /// round(maxDuration × rate) of them. Samples are never placed by their own (rounded) timestamps: a stream is
    /// one contiguous run of what the decoder gives, as with the ffmpeg CLI. Where the container's time base is
    /// coarser than a sample (Matroska, WebM, FLV: 1 ms), a window starting later than 60 s is reached by seeking
    /// and is then placed within half a millisecond; everywhere else windows are sample-exact. Channel mixing (e.g.
    /// stereo to mono) uses swresample's default matrix, the one the ffmpeg CLI uses for `-ac`.
    public static func audioPCM(
        _ input: MediaInput, options: AudioOptions, limits: MediaLimits
    ) throws(MediaError) -> PCMAudio {
        guard options.sampleRate >= 1000, options.sampleRate <= 384_000 else {
            throw MediaError(.invalidOptions, "sample rate must be in 1000…384000, got \(options.sampleRate)")
        }
        guard options.channels >= 1, options.channels <= 16 else {
            throw MediaError(.invalidOptions, "channels must be in 1…16, got \(options.channels)")
        }
        if let maxDuration = options.maxDurationSeconds, !(maxDuration > 0) {
            throw MediaError(.invalidOptions, "maxDurationSeconds must be positive, got \(maxDuration)")
        }
        try validate(options.window)

        let session = try Session(input, limits: limits)
        let demuxer = session.demuxer
        guard let index = demuxer.firstStream(of: AVMEDIA_TYPE_AUDIO) else {
            throw MediaError(.noAudioStream, "\(demuxer.source.label) (\(demuxer.containerName)) has no audio stream")
        }
        let decoder = try Decoder.open(demuxer, stream: index)
        demuxer.discardAll(except: index)
        if let start = options.window?.startSeconds, start > 0,
            AudioSink.sampleExactTimestamps(demuxer.stream(index)) || start > AudioSink.coarseSeekHorizon
        {
            // Decode a little before the window: codecs with overlapping transforms (AAC, Opus, MP3) need a frame of
            // history to produce the window's first samples as a full decode would.
            demuxer.seek(stream: index, toSeconds: max(0, start - AudioSink.preroll))
        }
        var sink = try AudioSink(demuxer: demuxer, stream: index, options: options)
        let stats = try decoder.run(demuxer, into: &sink)
        if stats.reachedEnd {
            try sink.flush()
        }
        try demuxer.finish(stats, stream: index, decodedEnd: sink.decodedEnd, what: "audio frames")
        return sink.pcm
    }
}

/// Owner of a SwrContext, rebuilt when the decoded stream changes rate, sample format or channel layout mid-way.
struct Resampler: ~Copyable {
    private var context: OpaquePointer?
    private var inputLayout = AVChannelLayout()
    private var inputFormat: Int32 = -1
    private var inputRate: Int32 = 0

    init() {}

    deinit {
        var context = context
        swr_free(&context)
        var layout = inputLayout
        av_channel_layout_uninit(&layout)
    }

    var isConfigured: Bool { context != nil }

    func matches(_ frame: UnsafeMutablePointer<AVFrame>) -> Bool {
        guard context != nil, frame.pointee.format == inputFormat, frame.pointee.sample_rate == inputRate else {
            return false
        }
        var layout = inputLayout
        return withUnsafePointer(to: &frame.pointee.ch_layout) { av_channel_layout_compare(&layout, $0) } == 0
    }

    mutating func configure(
        for frame: UnsafeMutablePointer<AVFrame>, outputLayout: inout AVChannelLayout, outputFormat: AVSampleFormat,
        outputRate: Int32
    ) throws(MediaError) {
        swr_free(&context)
        av_channel_layout_uninit(&inputLayout)
        if av_channel_layout_copy(&inputLayout, &frame.pointee.ch_layout) < 0 {
            throw MediaError(.decodeFailed, "out of memory (channel layout)")
        }
        inputFormat = frame.pointee.format
        inputRate = frame.pointee.sample_rate
        // A layout with only a channel count still needs a channel order for mixing: use FFmpeg's default one.
        var mixLayout = AVChannelLayout()
        if inputLayout.order == AV_CHANNEL_ORDER_UNSPEC {
            av_channel_layout_default(&mixLayout, inputLayout.nb_channels)
        } else {
            av_channel_layout_copy(&mixLayout, &inputLayout)
        }
        defer { av_channel_layout_uninit(&mixLayout) }
        var result = swr_alloc_set_opts2(
            &context, &outputLayout, outputFormat, outputRate, &mixLayout, AVSampleFormat(rawValue: inputFormat),
            inputRate, 0, nil)
        if result >= 0 {
            result = swr_init(context)
        }
        if result < 0 {
            let name = cString(av_get_sample_fmt_name(AVSampleFormat(rawValue: inputFormat))) ?? "?"
            throw MediaError(
                .decodeFailed,
                "cannot resample \(name) \(inputRate) Hz × \(mixLayout.nb_channels) channels: \(averrorText(result))")
        }
    }

    /// Converts samples `offset..<offset + count` of `frame` (nil drains the delay line) into `output`, returning the
    /// number of sample frames written.
    mutating func convert(
        _ frame: UnsafeMutablePointer<AVFrame>?, offset: Int = 0, count: Int = 0, bytesPerFrame: Int,
        into output: inout [UInt8]
    ) throws(MediaError) -> Int {
        guard let context else { return 0 }
        let inputCount = frame == nil ? 0 : Int32(max(0, count))
        let capacity = max(Int(swr_get_out_samples(context, inputCount)), 0) + 32
        if output.count < capacity * bytesPerFrame {
            output = [UInt8](repeating: 0, count: capacity * bytesPerFrame)
        }
        var input: [UnsafePointer<UInt8>?] = []
        if let frame {
            let format = AVSampleFormat(rawValue: frame.pointee.format)
            let planar = av_sample_fmt_is_planar(format) != 0
            let channels = Int(frame.pointee.ch_layout.nb_channels)
            let step = Int(av_get_bytes_per_sample(format)) * (planar ? 1 : channels)
            for plane in 0..<(planar ? channels : 1) {
                input.append(UnsafePointer(frame.pointee.extended_data[plane]! + offset * step))
            }
        }
        let produced = output.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var planes: [UnsafeMutablePointer<UInt8>?] = [buffer.baseAddress]
            if frame != nil {
                return swr_convert(context, &planes, Int32(capacity), &input, inputCount)
            }
            return swr_convert(context, &planes, Int32(capacity), nil, 0)
        }
        if produced < 0 {
            throw MediaError(.decodeFailed, "resampling failed: \(averrorText(produced))")
        }
        return Int(produced)
    }
}

/// Resamples decoded audio and keeps the requested span, counted in output samples.
struct AudioSink: ~Copyable, FrameSink {
    static let preroll = 0.5
    /// After a seek the window is placed by the first frame's timestamp. With millisecond timestamps (Matroska, WebM,
    /// FLV) that is only known to ±0.5 ms, which would shift the window by up to 8 samples at 16 kHz against a full
    /// decode. So windows starting within this many seconds are decoded from the beginning and placed by counting
    /// samples, which is exact and costs little (audio decodes at hundreds of times real time); later windows seek and
    /// start within half a millisecond of the requested time.
    static let coarseSeekHorizon = 60.0

    /// Whether one tick of the stream's time base is at most one sample, so a timestamp or packet duration says
    /// exactly which sample it means (MP4/MOV, Ogg, WAV, MPEG-TS; not Matroska, WebM or FLV).
    static func sampleExactTimestamps(_ stream: UnsafeMutablePointer<AVStream>) -> Bool {
        let timeBase = stream.pointee.time_base
        let rate = Int64(stream.pointee.codecpar.pointee.sample_rate)
        return timeBase.num > 0 && timeBase.den > 0 && rate > 0 && Int64(timeBase.num) * rate <= Int64(timeBase.den)
    }

    private let demuxer: Demuxer
    private let streamIndex: Int
    private let options: AudioOptions
    private let timeBase: AVRational
    private var outputLayout = AVChannelLayout()
    private let outputFormat: AVSampleFormat
    private let bytesPerFrame: Int
    private var resampler = Resampler()
    private var scratch: [UInt8] = []
    /// Output-sample index of the next sample the resampler produces, once the first frame fixed the timeline.
    private var position: Int?
    private var keepFrom = 0
    private var keepUntil = Int.max
    private var data: [UInt8] = []
    private var firstInputTime: Double?
    private var inputSeconds = 0.0
    /// Input samples still to drop so that a windowed decode starts on the full decode's resampling grid.
    private var alignmentSkip = 0

    init(demuxer: Demuxer, stream index: Int, options: AudioOptions) throws(MediaError) {
        self.demuxer = demuxer
        streamIndex = index
        self.options = options
        timeBase = demuxer.stream(index).pointee.time_base
        outputFormat = options.format == .s16 ? AV_SAMPLE_FMT_S16 : AV_SAMPLE_FMT_FLT
        bytesPerFrame = options.channels * options.format.bytesPerSample
        av_channel_layout_default(&outputLayout, Int32(options.channels))
    }

    deinit {
        var layout = outputLayout
        av_channel_layout_uninit(&layout)
    }

    /// Where the decoded audio ends, from the first timestamp and the samples decoded since.
    var decodedEnd: Double? {
        firstInputTime.map { $0 + inputSeconds }
    }

    private var done: Bool {
        guard let position else { return false }
        return position >= keepUntil
    }

    mutating func consume(_ frame: UnsafeMutablePointer<AVFrame>) throws(MediaError) -> FrameVerdict {
        let rate = Double(options.sampleRate)
        if position == nil {
            let timestamp = frame.pointee.best_effort_timestamp
            let time = timestamp == noPTS
                ? 0 : Double(timestamp) * Double(timeBase.num) / Double(timeBase.den) - demuxer.startSeconds
            firstInputTime = time
            var first = Int((time * rate).rounded())
            let inputRate = Int(frame.pointee.sample_rate)
            if let window = options.window {
                keepFrom = Int((window.startSeconds * rate).rounded())
                if let end = window.endSeconds { keepUntil = Int((end * rate).rounded()) }
                if inputRate > 0 && demuxer.sought {
                    // Output sample i of a full decode is input time i / rate. After a seek the first input sample
                    // can fall between output samples, which would shift every resampled value by a fraction of a
                    // sample; dropping up to one grid step of pre-roll input (10 ms for 44.1 → 16 kHz) lands the
                    // resampler on the same grid, so a window holds the full decode's samples.
                    let inputIndex = Int((time * Double(inputRate)).rounded())
                    let step = inputRate / gcd(inputRate, options.sampleRate)
                    alignmentSkip = ((step - inputIndex % step) % step + step) % step
                    first = (inputIndex + alignmentSkip) / step * (options.sampleRate / gcd(inputRate, options.sampleRate))
                }
            } else {
                keepFrom = first
            }
            position = first
            if let maxDuration = options.maxDurationSeconds {
                keepUntil = min(keepUntil, keepFrom + Int((maxDuration * rate).rounded()))
            }
        }
        if frame.pointee.sample_rate > 0 {
            inputSeconds += Double(usableSamples(frame)) / Double(frame.pointee.sample_rate)
        }
        if let end = decodedEnd, end > demuxer.limits.maxDurationSeconds {
            throw MediaError(
                .tooLong,
                "stream \(streamIndex) decodes past \(formatSeconds(end)) s, over the limit of \(demuxer.limits.maxDurationSeconds) s")
        }
        if !resampler.matches(frame) {
            if resampler.isConfigured { try drain() }
            try resampler.configure(
                for: frame, outputLayout: &outputLayout, outputFormat: outputFormat,
                outputRate: Int32(options.sampleRate))
        }
        let usable = usableSamples(frame)
        let skipped = min(alignmentSkip, usable)
        alignmentSkip -= skipped
        let produced = try resampler.convert(
            frame, offset: skipped, count: usable - skipped, bytesPerFrame: bytesPerFrame, into: &scratch)
        try keep(produced)
        return done ? .stop : .more
    }

    /// Codecs decode whole frames, but a container can say its last packet holds fewer real samples (MP4's final
    /// AAC packet is often 136 samples of a 1024-sample frame, the rest being encoder padding). FFmpeg 5.1 does not
    /// trim that itself, so the packet duration is honoured here; without it a 2 s clip decodes 20 ms too long.
    ///
    /// Only when the stream's time base can express a single sample, though. Matroska, WebM and FLV count time in
    /// milliseconds, so there a packet duration is the frame length rounded (23 ms for AAC's 23.2 ms at 44.1 kHz,
    /// 13 ms for Opus's 13.5 ms first frame) and "trimming" to it cut real samples out of every packet: audible
    /// clicks, and a clip shorter than it is. Those containers carry padding as the decoder's skip-samples side data
    /// (Matroska's DiscardPadding), which FFmpeg already applies, or not at all; then we keep what the decoder gives,
    /// as the ffmpeg CLI does.
    private func usableSamples(_ frame: UnsafeMutablePointer<AVFrame>) -> Int {
        let decoded = Int(frame.pointee.nb_samples)
        let duration = frame.pointee.pkt_duration
        let rate = Int64(frame.pointee.sample_rate)
        guard duration > 0, rate > 0, timeBase.num > 0, timeBase.den > 0,
            Int64(timeBase.num) * rate <= Int64(timeBase.den)  // one tick ≤ one sample, as `sampleExactTimestamps`
        else { return decoded }
        let declared = Int(
            (Double(duration) * Double(timeBase.num) * Double(rate) / Double(timeBase.den)).rounded())
        return declared > 0 && declared < decoded ? declared : decoded
    }

    /// The resampler holds back a few samples for its filter; they belong to the end of the stream.
    mutating func flush() throws(MediaError) {
        try drain()
    }

    private mutating func drain() throws(MediaError) {
        while !done {
            let produced = try resampler.convert(nil, bytesPerFrame: bytesPerFrame, into: &scratch)
            if produced == 0 { break }
            try keep(produced)
        }
    }

    private mutating func keep(_ count: Int) throws(MediaError) {
        guard count > 0, let start = position else { return }
        position = start + count
        let from = max(start, keepFrom)
        let until = min(start + count, keepUntil)
        guard from < until else { return }
        let bytes = (until - from) * bytesPerFrame
        if data.count + bytes > demuxer.limits.maxOutputBytes {
            throw MediaError(.tooLarge, "decoded audio exceeds the output limit of \(demuxer.limits.maxOutputBytes) bytes")
        }
        let offset = (from - start) * bytesPerFrame
        data.append(contentsOf: scratch[offset..<offset + bytes])
    }

    var pcm: PCMAudio {
        PCMAudio(
            sampleRate: options.sampleRate, channels: options.channels, format: options.format,
            frameCount: data.count / bytesPerFrame, data: data)
    }
}

private func gcd(_ a: Int, _ b: Int) -> Int {
    var (a, b) = (abs(a), abs(b))
    while b != 0 { (a, b) = (b, a % b) }
    return max(a, 1)
}
