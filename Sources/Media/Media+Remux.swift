internal import CFFmpeg

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Media {
    /// Copies the video, audio and subtitle streams (no re-encoding) into `container` (an FFmpeg muxer name such as
    /// "mp4", "matroska", "webm", "mov"), written in memory through a custom seekable AVIOContext. Streams the target
    /// container cannot hold, data streams and cover art are dropped (an error only when nothing is left); the
    /// display matrix is carried over where the target can store it (MP4/MOV; FFmpeg 5.1's Matroska muxer cannot).
    /// MP4 output keeps its `moov` at the end: moving it to the front needs a second pass over the output.
    public static func remux(_ input: MediaInput, container: String, limits: MediaLimits) throws(MediaError) -> [UInt8] {
        let session = try Session(input, limits: limits)
        let demuxer = session.demuxer
        guard let outputFormat = av_guess_format(container, nil, nil),
            cString(outputFormat.pointee.name) != nil
        else {
            throw MediaError(.unsupportedFormat, "FFmpeg has no muxer named \(container)")
        }
        // Muxers that write files of their own (image sequences, HLS, segments) cannot write into one buffer.
        if outputFormat.pointee.flags & AVFMT_NOFILE != 0 {
            throw MediaError(.unsupportedFormat, "the \(container) muxer does not write a single stream of bytes")
        }
        let muxer = try Muxer(format: outputFormat, limit: limits.maxOutputBytes)
        let output = muxer.context

        var mapping = [Int](repeating: -1, count: Int(demuxer.context.pointee.nb_streams))
        var dropped: [String] = []
        for index in 0..<mapping.count {
            let stream = demuxer.stream(index)
            let par = stream.pointee.codecpar!
            let type = par.pointee.codec_type
            let name = cString(avcodec_get_name(par.pointee.codec_id)) ?? "?"
            // Cover art is a single picture posing as a video stream; most targets cannot hold it as such.
            let coverArt = stream.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC != 0
            guard type == AVMEDIA_TYPE_VIDEO || type == AVMEDIA_TYPE_AUDIO || type == AVMEDIA_TYPE_SUBTITLE, !coverArt,
                avformat_query_codec(outputFormat, par.pointee.codec_id, FF_COMPLIANCE_NORMAL) != 0
            else {
                dropped.append("\(index):\(name)")
                continue
            }
            guard let copy = avformat_new_stream(output, nil) else {
                throw MediaError(.encodeFailed, "out of memory (output stream)")
            }
            var result = avcodec_parameters_copy(copy.pointee.codecpar, par)
            if result < 0 { throw MediaError(.encodeFailed, "cannot copy stream \(index): \(averrorText(result))") }
            // The source container's codec tag may mean something else (or nothing) in the target.
            copy.pointee.codecpar.pointee.codec_tag = 0
            copy.pointee.time_base = stream.pointee.time_base
            copy.pointee.disposition = stream.pointee.disposition
            av_dict_copy(&copy.pointee.metadata, stream.pointee.metadata, 0)
            var size = 0
            if let matrix = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size), size > 0 {
                guard let target = av_stream_new_side_data(copy, AV_PKT_DATA_DISPLAYMATRIX, size) else {
                    throw MediaError(.encodeFailed, "out of memory (side data)")
                }
                target.update(from: matrix, count: size)
            }
            result = 0
            mapping[index] = Int(copy.pointee.index)
        }
        if output.pointee.nb_streams == 0 {
            throw MediaError(
                .unsupportedCodec, "none of the streams of \(demuxer.source.label) (\(dropped.joined(separator: ", "))) can be stored in \(container)")
        }

        var result = avformat_write_header(output, nil)
        if result < 0 {
            // The muxer checks the streams' parameters here (e.g. Matroska refuses raw RGB video): the input cannot
            // be stored in this container as it is.
            let failure = muxer.failure(result, "writing the \(container) header", log: demuxer.log)
            throw failure.reason == .encodeFailed ? MediaError(.unsupportedCodec, failure.message) : failure
        }
        let packet = try Packet()
        var packets = 0
        var ends = [Double](repeating: -.infinity, count: mapping.count)
        var lastDTS = [Int64?](repeating: nil, count: Int(output.pointee.nb_streams))
        let strictness: Int64 = outputFormat.pointee.flags & AVFMT_TS_NONSTRICT != 0 ? 0 : 1
        var readError: Int32?
        while true {
            try demuxer.deadline.check("remuxing to \(container)")
            result = av_read_frame(demuxer.context, packet.pointer)
            if result < 0 {
                if result == averrorExit || demuxer.deadline.expired { try demuxer.deadline.check("reading packets") }
                if result != averrorEOF { readError = result }
                break
            }
            let index = Int(packet.pointer.pointee.stream_index)
            guard index < mapping.count, mapping[index] >= 0 else {
                av_packet_unref(packet.pointer)
                continue
            }
            let source = demuxer.stream(index)
            let target = output.pointee.streams[mapping[index]]!
            if packet.pointer.pointee.pts != noPTS {
                let seconds = Double(packet.pointer.pointee.pts) * q2d(source.pointee.time_base) - demuxer.startSeconds
                try demuxer.checkDuration(seconds, what: "stream \(index) has a packet at")
                let duration = Double(max(0, packet.pointer.pointee.duration)) * q2d(source.pointee.time_base)
                ends[index] = max(ends[index], seconds + duration)
            }
            av_packet_rescale_ts(packet.pointer, source.pointee.time_base, target.pointee.time_base)
            packet.pointer.pointee.stream_index = Int32(mapping[index])
            packet.pointer.pointee.pos = -1
            // Damaged inputs can carry decreasing decode timestamps, which muxers refuse; like the ffmpeg CLI, clamp
            // them to just after the previous packet (and keep pts ≥ dts) rather than fail the whole file.
            let dts = packet.pointer.pointee.dts
            if dts != noPTS {
                let previous = lastDTS[mapping[index]]
                if let previous, dts <= previous {
                    let fixed = previous + strictness
                    if packet.pointer.pointee.pts != noPTS && packet.pointer.pointee.pts >= dts {
                        packet.pointer.pointee.pts = max(packet.pointer.pointee.pts, fixed)
                    }
                    packet.pointer.pointee.dts = fixed
                }
                lastDTS[mapping[index]] = packet.pointer.pointee.dts
            }
            packets += 1
            // Takes the packet's reference whether it succeeds or not.
            result = av_interleaved_write_frame(output, packet.pointer)
            if result < 0 {
                let failure = muxer.failure(result, "writing a packet of stream \(index)", log: demuxer.log)
                // What a muxer refuses in a copied packet comes from the input: timestamps it cannot order (pts before
                // dts) or data its bitstream filter cannot parse.
                let refused = result == etl_averror_invaliddata() || result == etl_averror(EINVAL)
                throw refused && failure.reason == .encodeFailed ? MediaError(.corrupt, failure.message) : failure
            }
        }
        if packets == 0 {
            throw demuxer.classifyFailure(readError ?? averrorEOF, while: "reading packets")
        }
        if !demuxer.limits.acceptTruncated {
            if demuxer.source.seekedPastEnd || (readError != nil && demuxer.source.reachedEnd) {
                throw MediaError(
                    .truncated,
                    "\(demuxer.source.label) ends early: \(averrorText(readError ?? averrorEOF))\(demuxer.log.suffix)")
            }
            for index in 0..<mapping.count where mapping[index] >= 0 && ends[index].isFinite {
                if let shortfall = demuxer.shortfall(stream: index, endingAt: ends[index]) {
                    throw MediaError(.truncated, "\(demuxer.source.label) is truncated: \(shortfall)")
                }
            }
        }
        result = av_write_trailer(output)
        if result < 0 {
            throw muxer.failure(result, "finishing the \(container) file", log: demuxer.log)
        }
        return muxer.writer.bytes
    }
}

/// The growing output of a muxer; seekable, because MP4 and Matroska go back to fill in sizes and indexes.
final class MemoryWriter {
    private(set) var bytes: [UInt8] = []
    private var position = 0
    let limit: Int
    private(set) var overflowed = false

    init(limit: Int) {
        self.limit = limit
    }

    func write(_ buffer: UnsafePointer<UInt8>, count: Int) -> Int32 {
        let end = position + count
        if end > limit {
            overflowed = true
            return etl_averror(EFBIG)
        }
        if end > bytes.count {
            bytes.append(contentsOf: repeatElement(0, count: end - bytes.count))
        }
        bytes.withUnsafeMutableBufferPointer { all in
            (all.baseAddress! + position).update(from: buffer, count: count)
        }
        position = end
        return Int32(count)
    }

    func seek(offset: Int64, whence: Int32) -> Int64 {
        if whence & AVSEEK_SIZE != 0 { return Int64(bytes.count) }
        let target: Int64
        switch whence & ~AVSEEK_FORCE {
        case SEEK_SET: target = offset
        case SEEK_CUR: target = Int64(position) + offset
        case SEEK_END: target = Int64(bytes.count) + offset
        default: return Int64(etl_averror(EINVAL))
        }
        guard target >= 0, target <= Int64(limit) else { return Int64(etl_averror(EINVAL)) }
        position = Int(target)
        return target
    }
}

private func writerWrite(_ opaque: UnsafeMutableRawPointer?, _ buffer: UnsafeMutablePointer<UInt8>?, _ count: Int32) -> Int32 {
    guard let opaque, let buffer, count >= 0 else { return etl_averror(EINVAL) }
    return Unmanaged<MemoryWriter>.fromOpaque(opaque).takeUnretainedValue().write(buffer, count: Int(count))
}

private func writerSeek(_ opaque: UnsafeMutableRawPointer?, _ offset: Int64, _ whence: Int32) -> Int64 {
    guard let opaque else { return -1 }
    return Unmanaged<MemoryWriter>.fromOpaque(opaque).takeUnretainedValue().seek(offset: offset, whence: whence)
}

/// Owner of an output AVFormatContext and the write AVIOContext (and its buffer) under it.
final class Muxer {
    let writer: MemoryWriter
    private var format: UnsafeMutablePointer<AVFormatContext>?
    private var io: UnsafeMutablePointer<AVIOContext>?

    var context: UnsafeMutablePointer<AVFormatContext> { format! }

    init(format outputFormat: UnsafePointer<AVOutputFormat>, limit: Int) throws(MediaError) {
        writer = MemoryWriter(limit: limit)
        let bufferSize = 1 << 16
        guard let buffer = av_malloc(bufferSize) else { throw MediaError(.encodeFailed, "out of memory (I/O buffer)") }
        io = avio_alloc_context(
            buffer.assumingMemoryBound(to: UInt8.self), Int32(bufferSize), 1,
            Unmanaged.passUnretained(writer).toOpaque(), nil, writerWrite, writerSeek)
        guard let io else {
            av_free(buffer)
            throw MediaError(.encodeFailed, "out of memory (I/O context)")
        }
        let result = avformat_alloc_output_context2(&format, outputFormat, nil, nil)
        guard result >= 0, let format else {
            throw MediaError(.encodeFailed, "cannot create the output context: \(averrorText(result))")
        }
        format.pointee.pb = io
        format.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        format.pointee.io_open = refuseOutputOpen
    }

    deinit {
        // Not closing pb: it is ours, released below after the context that points at it.
        avformat_free_context(format)
        if let io {
            av_free(io.pointee.buffer)
            io.pointee.buffer = nil
            var pointer: UnsafeMutablePointer<AVIOContext>? = io
            avio_context_free(&pointer)
        }
    }

    func failure(_ code: Int32, _ doing: String, log: LogCapture) -> MediaError {
        if writer.overflowed {
            return MediaError(.tooLarge, "the output exceeds the limit of \(writer.limit) bytes while \(doing)")
        }
        return MediaError(.encodeFailed, "\(doing) failed: \(averrorText(code))\(log.suffix)")
    }
}

private func refuseOutputOpen(
    _ context: UnsafeMutablePointer<AVFormatContext>?, _ io: UnsafeMutablePointer<UnsafeMutablePointer<AVIOContext>?>?,
    _ url: UnsafePointer<CChar>?, _ flags: Int32, _ options: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    etl_averror(EPERM)
}
