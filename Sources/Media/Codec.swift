internal import CFFmpeg

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owner of one AVPacket.
struct Packet: ~Copyable {
    let pointer: UnsafeMutablePointer<AVPacket>

    init() throws(MediaError) {
        guard let pointer = av_packet_alloc() else { throw MediaError(.decodeFailed, "out of memory (packet)") }
        self.pointer = pointer
    }

    deinit {
        var pointer: UnsafeMutablePointer<AVPacket>? = pointer
        av_packet_free(&pointer)
    }
}

/// Owner of one AVFrame (and whatever buffers it references).
struct Frame: ~Copyable {
    let pointer: UnsafeMutablePointer<AVFrame>

    init() throws(MediaError) {
        guard let pointer = av_frame_alloc() else { throw MediaError(.decodeFailed, "out of memory (frame)") }
        self.pointer = pointer
    }

    deinit {
        var pointer: UnsafeMutablePointer<AVFrame>? = pointer
        av_frame_free(&pointer)
    }

    var isEmpty: Bool { pointer.pointee.buf.0 == nil && pointer.pointee.data.0 == nil }
}

enum FrameVerdict {
    case more, stop
}

/// What consumes decoded frames; `~Copyable` so sinks can own scalers and resamplers.
protocol FrameSink: ~Copyable {
    mutating func consume(_ frame: UnsafeMutablePointer<AVFrame>) throws(MediaError) -> FrameVerdict
    /// Whether the frame of a packet with this pts and duration (stream time base; `noPTS`/0 when unknown) could
    /// be used. Asked only by a decoder opened with `skipUnwantedFrames`; when false, the packet is still decoded if
    /// other frames reference it, only a non-reference frame is skipped.
    func wants(pts: Int64, duration: Int64) -> Bool
    /// Whether any frame of a packet with this dts or a later one could still be used; when false (asked only with
    /// `skipUnwantedFrames`), the decoder is flushed and reading stops (`DecodeStats.stoppedEarly`).
    func wantsMore(dts: Int64) -> Bool
}

extension FrameSink where Self: ~Copyable {
    func wants(pts: Int64, duration: Int64) -> Bool { true }
    func wantsMore(dts: Int64) -> Bool { true }
}

struct DecodeStats {
    var packets = 0
    var frames = 0
    var errors = 0
    var firstError: String?
    var firstErrorCode: Int32 = 0
    /// av_read_frame's last failure other than a clean end of file.
    var readError: Int32?
    /// Every packet was read and the decoder drained (not stopped early by the sink).
    var reachedEnd = false
    /// Reading stopped because no later packet could be used (`FrameSink.wantsMore`); the decoder was drained.
    var stoppedEarly = false

    mutating func note(_ code: Int32, _ message: String) {
        errors += 1
        if firstError == nil {
            firstError = message
            firstErrorCode = code
        }
    }
}

/// Owner of one decoder (AVCodecContext) for one stream.
struct Decoder: ~Copyable {
    let context: UnsafeMutablePointer<AVCodecContext>
    let streamIndex: Int
    let codecName: String
    /// `DecodeMode.fast`: non-reference frames the sink does not want are not decoded.
    let skipsUnwantedFrames: Bool

    private init(
        context: UnsafeMutablePointer<AVCodecContext>, streamIndex: Int, codecName: String, skipsUnwantedFrames: Bool
    ) {
        self.context = context
        self.streamIndex = streamIndex
        self.codecName = codecName
        self.skipsUnwantedFrames = skipsUnwantedFrames
    }

    deinit {
        var pointer: UnsafeMutablePointer<AVCodecContext>? = context
        avcodec_free_context(&pointer)
    }

    static func open(_ demuxer: Demuxer, stream index: Int, mode: DecodeMode = .exact) throws(MediaError) -> Decoder {
        let stream = demuxer.stream(index)
        let par = stream.pointee.codecpar!
        let name = cString(avcodec_get_name(par.pointee.codec_id)) ?? "unknown"
        guard let codec = avcodec_find_decoder(par.pointee.codec_id) else {
            throw MediaError(.unsupportedCodec, "no decoder for codec \(name) of stream \(index)")
        }
        guard let context = avcodec_alloc_context3(codec) else {
            throw MediaError(.decodeFailed, "out of memory (decoder for stream \(index))")
        }
        let decoder = Decoder(context: context, streamIndex: index, codecName: name, skipsUnwantedFrames: mode == .fast)
        var result = avcodec_parameters_to_context(context, par)
        if result < 0 {
            throw MediaError(.decodeFailed, "cannot configure the \(name) decoder of stream \(index): \(averrorText(result))")
        }
        context.pointee.pkt_timebase = stream.pointee.time_base
        // The pipeline runs many decodes in parallel; codec threads would only add contention and start-up cost.
        context.pointee.thread_count = 1
        context.pointee.max_pixels = Int64(demuxer.limits.maxPixels)
        if mode == .fast {
            // Deblocking is a large share of H.264/HEVC decoding; skipping it on every frame lets the error of one
            // reference frame carry into the next until a keyframe, which stays small within a GOP (see
            // `DecodeMode.fast`'s PSNR). FLAG2_FAST allows the decoder's own non-bit-exact shortcuts.
            context.pointee.skip_loop_filter = AVDISCARD_ALL
            context.pointee.flags2 |= AV_CODEC_FLAG2_FAST
        }
        result = avcodec_open2(context, codec, nil)
        if result < 0 {
            if demuxer.log.exceededMaxPixels {
                throw MediaError(.tooLarge, "stream \(index) has a picture larger than the limit\(demuxer.log.suffix)")
            }
            throw MediaError(
                .unsupportedCodec,
                "cannot open the \(name) decoder of stream \(index): \(averrorText(result))\(demuxer.log.suffix)")
        }
        return decoder
    }

    /// Reads packets, decodes those of this stream and hands every frame to `sink` until the input ends (then flushes
    /// the decoder) or the sink says stop. Packets the decoder rejects are skipped and counted, as the ffmpeg CLI does;
    /// whether that is fatal depends on whether anything decoded (see `Demuxer.finish`).
    func run<Sink: FrameSink & ~Copyable>(_ demuxer: Demuxer, into sink: inout Sink) throws(MediaError) -> DecodeStats {
        let packet = try Packet()
        let frame = try Frame()
        var stats = DecodeStats()
        let fmt = demuxer.context
        while true {
            try demuxer.deadline.check("decoding stream \(streamIndex) (\(codecName))")
            let result = av_read_frame(fmt, packet.pointer)
            if result < 0 {
                if result == averrorExit || demuxer.deadline.expired {
                    try demuxer.deadline.check("reading stream \(streamIndex)")
                }
                if result != averrorEOF { stats.readError = result }
                break
            }
            guard Int(packet.pointer.pointee.stream_index) == streamIndex else {
                av_packet_unref(packet.pointer)
                continue
            }
            if skipsUnwantedFrames && !sink.wantsMore(dts: packet.pointer.pointee.dts) {
                av_packet_unref(packet.pointer)
                stats.stoppedEarly = true
                break
            }
            stats.packets += 1
            let position = packet.pointer.pointee.pts
            if skipsUnwantedFrames {
                // With one codec thread the decoder decodes inside avcodec_send_packet, so setting this per packet
                // applies to exactly this packet's frame.
                let wanted = sink.wants(pts: position, duration: packet.pointer.pointee.duration)
                context.pointee.skip_frame = wanted ? AVDISCARD_DEFAULT : AVDISCARD_NONREF
            }
            var sent = avcodec_send_packet(context, packet.pointer)
            if sent == averrorEAGAIN {
                // The decoder wants its output taken before more input; then the same packet goes in again.
                if try drain(frame, demuxer, &stats, &sink) == .stop {
                    av_packet_unref(packet.pointer)
                    return stats
                }
                sent = avcodec_send_packet(context, packet.pointer)
            }
            av_packet_unref(packet.pointer)
            if sent < 0 {
                stats.note(
                    sent,
                    "stream \(streamIndex) packet at pts \(position): \(averrorText(sent))\(demuxer.log.suffix)")
                continue
            }
            if try drain(frame, demuxer, &stats, &sink) == .stop { return stats }
        }
        avcodec_send_packet(context, nil)
        if try drain(frame, demuxer, &stats, &sink) == .stop { return stats }
        stats.reachedEnd = !stats.stoppedEarly
        return stats
    }

    private func drain<Sink: FrameSink & ~Copyable>(
        _ frame: borrowing Frame, _ demuxer: Demuxer, _ stats: inout DecodeStats, _ sink: inout Sink
    ) throws(MediaError) -> FrameVerdict {
        while true {
            let result = avcodec_receive_frame(context, frame.pointer)
            if result == averrorEAGAIN || result == averrorEOF { return .more }
            if result < 0 {
                if demuxer.log.exceededMaxPixels {
                    throw MediaError(.tooLarge, "stream \(streamIndex) has a picture larger than the limit\(demuxer.log.suffix)")
                }
                stats.note(result, "stream \(streamIndex): \(averrorText(result))\(demuxer.log.suffix)")
                return .more
            }
            stats.frames += 1
            let picture = frame.pointer.pointee
            if picture.width > 0 || picture.height > 0 {
                try checkPictureSize(
                    width: Int(picture.width), height: Int(picture.height), limits: demuxer.limits,
                    what: "stream \(streamIndex) frame \(stats.frames)")
            }
            let verdict = try sink.consume(frame.pointer)
            av_frame_unref(frame.pointer)
            if verdict == .stop { return .stop }
        }
    }
}

extension Demuxer {
    /// Why an input that was decoded to its end looks cut short, or nil.
    func truncationEvidence(_ stats: DecodeStats, stream index: Int, decodedEnd: Double?) -> String? {
        if source.seekedPastEnd {
            return "the container points past the end of the data"
        }
        if let readError = stats.readError, source.reachedEnd {
            return "the demuxer failed at the end of the data: \(averrorText(readError))\(log.suffix)"
        }
        if let decodedEnd, let shortfall = shortfall(stream: index, endingAt: decodedEnd) {
            return shortfall
        }
        return nil
    }

    /// Whether a stream's data ends clearly before the duration its header declares.
    func shortfall(stream index: Int, endingAt end: Double) -> String? {
        guard let declared = declaredDuration(stream: index), declared > 0 else { return nil }
        // Streams of one file legitimately end a little apart (audio frames, the last frame's duration), so only a
        // clear shortfall counts.
        let tolerance = max(0.5, declared * 0.05)
        guard end + tolerance < declared else { return nil }
        return "stream \(index) declares \(formatSeconds(declared)) s but its data ends at \(formatSeconds(end)) s"
    }

    /// The stream's own declared duration (container headers, not a bitrate guess).
    func declaredDuration(stream index: Int) -> Double? {
        let stream = self.stream(index)
        guard stream.pointee.duration != noPTS, stream.pointee.duration > 0 else { return nil }
        var seconds = Double(stream.pointee.duration) * q2d(stream.pointee.time_base)
        if stream.pointee.start_time != noPTS {
            seconds += Double(stream.pointee.start_time) * q2d(stream.pointee.time_base) - startSeconds
        }
        return seconds
    }

    /// Turns the outcome of a decode into an error when nothing usable came out, or when the input is truncated and
    /// the caller did not accept partial results.
    func finish(_ stats: DecodeStats, stream index: Int, decodedEnd: Double?, what: String) throws(MediaError) {
        if stats.frames == 0 && sought && stats.packets == 0 && stats.readError == nil {
            return
        }
        if stats.frames == 0 {
            if source.refusedNestedOpen != nil {
                throw classifyFailure(stats.readError ?? averrorEOF, while: "reading stream \(index)")
            }
            if log.exceededMaxPixels {
                throw MediaError(.tooLarge, "stream \(index) has a picture larger than the limit\(log.suffix)")
            }
            let evidence = truncationEvidence(stats, stream: index, decodedEnd: nil)
                ?? (source.reachedEnd && stats.packets == 0 ? "no packet of stream \(index) before the end of the data" : nil)
            if let evidence {
                throw MediaError(.truncated, "\(source.label): nothing of stream \(index) decoded; \(evidence)")
            }
            if let error = stats.firstError {
                // Running out of memory says nothing about the input; any other decoder error does.
                let resources = stats.firstErrorCode == etl_averror(ENOMEM)
                throw MediaError(
                    resources ? .decodeFailed : .corrupt,
                    "\(source.label): no \(what) decoded from stream \(index); first error: \(error)")
            }
            if let readError = stats.readError {
                throw MediaError(
                    .corrupt, "\(source.label): stream \(index) unreadable: \(averrorText(readError))\(log.suffix)")
            }
            throw MediaError(.corrupt, "\(source.label): stream \(index) holds no \(what)")
        }
        guard stats.reachedEnd, !limits.acceptTruncated else { return }
        if let evidence = truncationEvidence(stats, stream: index, decodedEnd: decodedEnd) {
            throw MediaError(
                .truncated, "\(source.label): stream \(index) is truncated after \(stats.frames) \(what); \(evidence)")
        }
    }
}
