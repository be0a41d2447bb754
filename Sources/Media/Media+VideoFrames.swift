internal import CFFmpeg

extension Media {
    /// Samples frames of the first video stream by timestamp, upright, scaled to `width`×`height`.
    ///
    /// Sampling. Times are seconds from the container start. With `s = window.startSeconds` (0 without a window) and
    /// `e = window.endSeconds` (+∞ without one), output frame `k` stands for time `t_k = s + k / fps` and is the last
    /// decoded frame whose presentation time is ≤ `t_k` (the first decoded frame when none is, e.g. a stream starting
    /// after `s`). Frame `k` exists while `t_k < min(e, D)` and `k < maxFrames`, where `D` is where the video ends: the
    /// presentation time of its last frame plus that frame's duration. So the count is exactly
    /// `min(maxFrames, max(0, ceil((min(e, D) - s) * fps)))`; e.g. a 2 s clip at 5 fps gives 10 frames whatever its own
    /// frame rate, and a window starting at or after `D` gives 0 frames (not an error).
    /// Timestamps come from `best_effort_timestamp`, so variable-frame-rate input is sampled at the right moments;
    /// `FrameTensor.sourceTimestamps` tells which decoded frame each output frame is.
    ///
    /// Rotation and mirroring from the stream's display matrix (or the first frame's, e.g. EXIF) are applied before
    /// the resize, so a 320×240 clip displayed rotated by 90° is treated as a 240×320 picture.
    public static func videoFrames(
        _ input: MediaInput, options: VideoFramesOptions, limits: MediaLimits
    ) throws(MediaError) -> FrameTensor {
        try validate(options, limits: limits)
        let session = try Session(
            input, limits: limits, analysis: options.decode == .fast ? .withoutVideoPictures : .full)
        let demuxer = session.demuxer
        guard let index = demuxer.firstStream(of: AVMEDIA_TYPE_VIDEO) else {
            throw MediaError(.noVideoStream, "\(demuxer.source.label) (\(demuxer.containerName)) has no video stream")
        }
        let decoder = try Decoder.open(demuxer, stream: index, mode: options.decode)
        demuxer.discardAll(except: index)
        let start = options.window?.startSeconds ?? 0
        if start > 0 {
            demuxer.seek(stream: index, toSeconds: start)
        }
        var sampler = try VideoSampler(demuxer: demuxer, stream: index, options: options)
        let stats = try decoder.run(demuxer, into: &sampler)
        try demuxer.finish(stats, stream: index, decodedEnd: sampler.decodedEnd, what: "video frames")
        if stats.reachedEnd {
            try sampler.finish()
        } else if stats.stoppedEarly, let declaredEnd = sampler.declaredEnd {
            try sampler.finish(videoEnd: declaredEnd)
        }
        return sampler.tensor
    }

    static func validate(_ options: VideoFramesOptions, limits: MediaLimits) throws(MediaError) {
        guard options.fps.isFinite, options.fps > 0, options.fps <= 1000 else {
            throw MediaError(.invalidOptions, "fps must be in (0, 1000], got \(options.fps)")
        }
        guard options.width > 0, options.height > 0, options.width <= limits.maxDimension,
            options.height <= limits.maxDimension, options.width * options.height <= limits.maxPixels
        else {
            throw MediaError(
                .invalidOptions, "output size \(options.width)x\(options.height) is empty or over the picture limits")
        }
        guard options.maxFrames >= 0 else {
            throw MediaError(.invalidOptions, "maxFrames must not be negative, got \(options.maxFrames)")
        }
        try validate(options.window)
    }

    static func validate(_ window: TimeWindow?) throws(MediaError) {
        guard let window else { return }
        guard window.startSeconds.isFinite, window.startSeconds >= 0 else {
            throw MediaError(.invalidOptions, "window start must be a finite time ≥ 0, got \(window.startSeconds)")
        }
        if let end = window.endSeconds, !(end > window.startSeconds) {
            throw MediaError(.invalidOptions, "window end \(end) must be after its start \(window.startSeconds)")
        }
    }
}

/// The sampling state machine of `videoFrames`: it keeps the latest decoded frame and emits it for every sample time
/// before the next frame's timestamp. Only emitted frames are converted, and a frame repeated for several sample times
/// is converted once.
struct VideoSampler: ~Copyable, FrameSink {
    /// Timestamps are rationals turned into doubles; this absorbs their rounding, far below any frame interval.
    private static let epsilon = 1e-6

    private let demuxer: Demuxer
    private let streamIndex: Int
    private let options: VideoFramesOptions
    private let start: Double
    private let end: Double
    private let nominalFrameDuration: Double
    private let timeBase: AVRational
    private var orientation: Orientation?
    private var scaler: Scaler
    private let held: Frame
    private var heldTime: Double?
    private var heldDuration = 0.0
    private var heldPixels: [UInt8] = []
    private var nextSample = 0
    private var pixels: [UInt8] = []
    private var timestamps: [Double] = []
    private let frameBytes: Int
    /// Fast decoding: where the stream's header says the video ends, and the last sample time before it. Packets
    /// decoded after that time cannot be used, so decoding stops there instead of running to the end only to learn
    /// where the video ends. Nil in exact mode and when the container declares no duration for the stream.
    let declaredEnd: Double?
    private let lastSampleTime: Double?

    init(demuxer: Demuxer, stream index: Int, options: VideoFramesOptions) throws(MediaError) {
        self.demuxer = demuxer
        streamIndex = index
        self.options = options
        start = options.window?.startSeconds ?? 0
        end = options.window?.endSeconds ?? .infinity
        let stream = demuxer.stream(index)
        timeBase = stream.pointee.time_base
        let rate = stream.pointee.avg_frame_rate.num > 0 ? stream.pointee.avg_frame_rate : stream.pointee.r_frame_rate
        nominalFrameDuration = rate.num > 0 && rate.den > 0 ? Double(rate.den) / Double(rate.num) : 0
        orientation = Orientation.of(stream: stream)
        held = try Frame()
        scaler = Scaler(filter: ScaleFilter(options.decode))
        frameBytes = options.width * options.height * options.pixelFormat.channels
        if options.decode == .fast, let declared = demuxer.declaredDuration(stream: index), declared > start {
            let last = min(options.maxFrames, Int(((min(end, declared) - start) * options.fps).rounded(.up))) - 1
            declaredEnd = declared
            lastSampleTime = last >= 0 ? start + Double(last) / options.fps : nil
        } else {
            declaredEnd = nil
            lastSampleTime = nil
        }
    }

    private var done: Bool {
        nextSample >= options.maxFrames || sampleTime(nextSample) >= end
    }

    private func sampleTime(_ k: Int) -> Double {
        start + Double(k) / options.fps
    }

    /// Where the decoded video ends so far: the last frame's time plus its duration.
    var decodedEnd: Double? {
        guard let heldTime else { return nil }
        return heldTime + heldDuration
    }

    mutating func consume(_ frame: UnsafeMutablePointer<AVFrame>) throws(MediaError) -> FrameVerdict {
        let time = frameSeconds(frame) ?? decodedEnd ?? 0
        if time > demuxer.limits.maxDurationSeconds {
            throw MediaError(
                .tooLong,
                "stream \(streamIndex) has a frame at \(formatSeconds(time)) s, past the limit of \(demuxer.limits.maxDurationSeconds) s")
        }
        if orientation == nil {
            orientation = Orientation.of(frame: frame) ?? .upright
        }
        if heldTime != nil {
            while !done && sampleTime(nextSample) < time - VideoSampler.epsilon {
                try emitHeld()
            }
            if done { return .stop }
        }
        av_frame_unref(held.pointer)
        av_frame_move_ref(held.pointer, frame)
        heldTime = time
        let duration = Double(held.pointer.pointee.pkt_duration) * q2d(timeBase)
        heldDuration = duration > 0 ? duration : nominalFrameDuration
        heldPixels.removeAll(keepingCapacity: true)
        return .more
    }

    /// After the last frame: the remaining sample times up to where the video ends, which is where the last decoded
    /// frame ends, or `videoEnd` when decoding stopped early (fast mode, see `declaredEnd`).
    mutating func finish(videoEnd: Double? = nil) throws(MediaError) {
        guard let decodedEnd else { return }
        // A last frame of unknown duration still covers its own instant.
        let limit = min(end, max(videoEnd ?? decodedEnd, (heldTime ?? 0) + 2 * VideoSampler.epsilon))
        while !done && sampleTime(nextSample) < limit - VideoSampler.epsilon {
            try emitHeld()
        }
    }

    /// Fast decoding: whether some sample time falls in the packet's frame's span [pts, pts + duration), so the
    /// sampler could take it. Unknown timestamps, and the frames before the first one is held (it stands in for sample
    /// times before the stream starts), are always wanted. Generous by `epsilon` at both ends.
    func wants(pts: Int64, duration: Int64) -> Bool {
        guard heldTime != nil, pts != noPTS, duration > 0, timeBase.den != 0 else { return true }
        let time = Double(pts) * Double(timeBase.num) / Double(timeBase.den) - demuxer.startSeconds
        let span = Double(duration) * Double(timeBase.num) / Double(timeBase.den)
        let k = max(0, Int(((time - VideoSampler.epsilon - start) * options.fps).rounded(.up)))
        guard k < options.maxFrames else { return false }
        let t = sampleTime(k)
        return t < end && t < time + span + VideoSampler.epsilon
    }

    /// Fast decoding: a packet decoded after the last sample time presents a frame after it (pts ≥ dts), and so does
    /// every packet after it; none can be used.
    func wantsMore(dts: Int64) -> Bool {
        guard let lastSampleTime, heldTime != nil, dts != noPTS, timeBase.den != 0 else { return true }
        let time = Double(dts) * Double(timeBase.num) / Double(timeBase.den) - demuxer.startSeconds
        return time <= lastSampleTime + VideoSampler.epsilon
    }

    private func frameSeconds(_ frame: UnsafeMutablePointer<AVFrame>) -> Double? {
        let timestamp = frame.pointee.best_effort_timestamp
        guard timestamp != noPTS, timeBase.den != 0 else { return nil }
        // Multiply before dividing so that e.g. 3 × 1/10 is exactly 0.3.
        return Double(timestamp) * Double(timeBase.num) / Double(timeBase.den) - demuxer.startSeconds
    }

    private mutating func emitHeld() throws(MediaError) {
        if pixels.count + frameBytes > demuxer.limits.maxOutputBytes {
            throw MediaError(
                .tooLarge, "\(nextSample + 1) frames of \(frameBytes) bytes exceed the output limit of \(demuxer.limits.maxOutputBytes) bytes")
        }
        if heldPixels.isEmpty {
            try scaler.render(
                held.pointer, orientation: orientation ?? .upright, width: options.width, height: options.height,
                mode: options.resize, format: options.pixelFormat, into: &heldPixels)
        }
        if pixels.isEmpty {
            // Reserve for the expected count (bounded by the limits) rather than growing by doubling.
            let duration = min(demuxer.durationSeconds ?? 10, end, demuxer.limits.maxDurationSeconds)
            let expected = min(options.maxFrames, max(1, Int(((duration - start) * options.fps).rounded(.up)) + 1))
            pixels.reserveCapacity(min(expected * frameBytes, demuxer.limits.maxOutputBytes))
        }
        pixels.append(contentsOf: heldPixels)
        timestamps.append(heldTime ?? 0)
        nextSample += 1
    }

    var tensor: FrameTensor {
        FrameTensor(
            frames: nextSample, height: options.height, width: options.width, channels: options.pixelFormat.channels,
            pixels: pixels, sourceTimestamps: timestamps)
    }
}
