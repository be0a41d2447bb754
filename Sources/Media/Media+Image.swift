internal import CFFmpeg

extension Media {
    /// A still image, or the first frame of a video as a thumbnail, upright (display matrix / EXIF orientation
    /// applied), resized per `options`, encoded as PNG (RGB, 8 bits) or baseline JPEG (4:2:0, full range).
    /// Transparent pixels are flattened onto white.
    public static func image(
        _ input: MediaInput, options: ImageOptions, limits: MediaLimits
    ) throws(MediaError) -> [UInt8] {
        if let width = options.width, width <= 0 || width > limits.maxDimension {
            throw MediaError(.invalidOptions, "image width \(width) is out of range")
        }
        if let height = options.height, height <= 0 || height > limits.maxDimension {
            throw MediaError(.invalidOptions, "image height \(height) is out of range")
        }
        if case .jpeg(let quality) = options.format, !(1...100).contains(quality) {
            throw MediaError(.invalidOptions, "JPEG quality must be in 1…100, got \(quality)")
        }
        let session = try Session(input, limits: limits)
        let demuxer = session.demuxer
        guard let index = demuxer.firstStream(of: AVMEDIA_TYPE_VIDEO, allowCoverArt: true) else {
            throw MediaError(.noVideoStream, "\(demuxer.source.label) (\(demuxer.containerName)) has no picture")
        }
        let decoder = try Decoder.open(demuxer, stream: index)
        demuxer.discardAll(except: index)
        var sink = try FirstFrameSink(orientation: Orientation.of(stream: demuxer.stream(index)))
        let stats = try decoder.run(demuxer, into: &sink)
        try demuxer.finish(stats, stream: index, decodedEnd: nil, what: "pictures")
        guard !sink.frame.isEmpty else {
            throw MediaError(.corrupt, "\(demuxer.source.label): no picture decoded from stream \(index)")
        }
        let picture = sink.frame.pointer
        let orientation = sink.orientation ?? .upright
        let uprightWidth = Int(orientation.transpose ? picture.pointee.height : picture.pointee.width)
        let uprightHeight = Int(orientation.transpose ? picture.pointee.width : picture.pointee.height)
        let (width, height) = targetSize(
            width: options.width, height: options.height, uprightWidth: uprightWidth, uprightHeight: uprightHeight)
        try checkPictureSize(width: width, height: height, limits: limits, what: "the requested image")
        guard width * height * 3 <= limits.maxOutputBytes else {
            throw MediaError(.tooLarge, "a \(width)x\(height) image exceeds the output limit")
        }

        var scaler = Scaler()
        var rgb: [UInt8] = []
        rgb.reserveCapacity(width * height * 3)
        try scaler.render(
            picture, orientation: orientation, width: width, height: height,
            mode: options.width != nil && options.height != nil ? options.resize : .stretch, format: .rgb24,
            into: &rgb)
        let encoded = try ImageEncoder.encode(rgb: rgb, width: width, height: height, format: options.format)
        try demuxer.deadline.check("encoding the image")
        return encoded
    }

    /// The output size for `ImageOptions`: a missing side follows the upright aspect ratio.
    static func targetSize(width: Int?, height: Int?, uprightWidth: Int, uprightHeight: Int) -> (Int, Int) {
        switch (width, height) {
        case let (width?, height?):
            return (width, height)
        case let (width?, nil):
            return (width, max(1, Int((Double(uprightHeight) * Double(width) / Double(uprightWidth)).rounded())))
        case let (nil, height?):
            return (max(1, Int((Double(uprightWidth) * Double(height) / Double(uprightHeight)).rounded())), height)
        case (nil, nil):
            return (uprightWidth, uprightHeight)
        }
    }
}

/// Keeps the first decoded picture and stops.
struct FirstFrameSink: ~Copyable, FrameSink {
    let frame: Frame
    var orientation: Orientation?

    init(orientation: Orientation?) throws(MediaError) {
        frame = try Frame()
        self.orientation = orientation
    }

    mutating func consume(_ decoded: UnsafeMutablePointer<AVFrame>) throws(MediaError) -> FrameVerdict {
        if orientation == nil {
            orientation = Orientation.of(frame: decoded)
        }
        av_frame_move_ref(frame.pointer, decoded)
        return .stop
    }
}

/// Owner of an encoder context, for one picture.
struct ImageEncoder: ~Copyable {
    let context: UnsafeMutablePointer<AVCodecContext>

    private init(context: UnsafeMutablePointer<AVCodecContext>) {
        self.context = context
    }

    deinit {
        var pointer: UnsafeMutablePointer<AVCodecContext>? = context
        avcodec_free_context(&pointer)
    }

    /// JPEG quality 1…100 onto MJPEG's qscale 31…2 (lower is better; 2 is the encoder's default best).
    static func qscale(forQuality quality: Int) -> Int {
        let clamped = min(100, max(1, quality))
        return 2 + Int((Double(100 - clamped) * 29 / 99).rounded())
    }

    static func encode(rgb: [UInt8], width: Int, height: Int, format: ImageFormat) throws(MediaError) -> [UInt8] {
        let codecID: AVCodecID
        let pixelFormat: AVPixelFormat
        switch format {
        case .png: (codecID, pixelFormat) = (AV_CODEC_ID_PNG, AV_PIX_FMT_RGB24)
        case .jpeg: (codecID, pixelFormat) = (AV_CODEC_ID_MJPEG, AV_PIX_FMT_YUVJ420P)
        }
        guard let codec = avcodec_find_encoder(codecID) else {
            throw MediaError(.unsupportedCodec, "this FFmpeg has no \(codecID == AV_CODEC_ID_PNG ? "PNG" : "JPEG") encoder")
        }
        guard let allocated = avcodec_alloc_context3(codec) else {
            throw MediaError(.encodeFailed, "out of memory (encoder)")
        }
        // The owner lives to the end of this scope (a noncopyable value is destroyed where its scope ends).
        let encoder = ImageEncoder(context: allocated)
        let context = encoder.context
        context.pointee.width = Int32(width)
        context.pointee.height = Int32(height)
        context.pointee.pix_fmt = pixelFormat
        context.pointee.time_base = AVRational(num: 1, den: 1)
        context.pointee.thread_count = 1
        var quality: Int32 = 0
        if case .jpeg(let value) = format {
            quality = Int32(qscale(forQuality: value)) * FF_QP2LAMBDA
            context.pointee.flags |= AV_CODEC_FLAG_QSCALE
            context.pointee.global_quality = quality
            context.pointee.color_range = AVCOL_RANGE_JPEG
        }
        var result = avcodec_open2(context, codec, nil)
        if result < 0 {
            throw MediaError(.encodeFailed, "cannot open the image encoder: \(averrorText(result))")
        }

        let rgbFrame = try ImageEncoder.picture(AV_PIX_FMT_RGB24, width: width, height: height)
        let stride = Int(rgbFrame.pointer.pointee.linesize.0)
        rgb.withUnsafeBufferPointer { source in
            for row in 0..<height {
                (rgbFrame.pointer.pointee.data.0! + row * stride).update(
                    from: source.baseAddress! + row * width * 3, count: width * 3)
            }
        }
        let frame: Frame
        if pixelFormat == AV_PIX_FMT_RGB24 {
            frame = rgbFrame
        } else {
            frame = try ImageEncoder.picture(pixelFormat, width: width, height: height)
            try convert(rgbFrame.pointer, into: frame.pointer)
        }
        frame.pointer.pointee.quality = quality

        let packet = try Packet()
        var output: [UInt8] = []
        result = avcodec_send_frame(context, frame.pointer)
        if result >= 0 { result = avcodec_send_frame(context, nil) }
        if result < 0 {
            throw MediaError(.encodeFailed, "image encoder refused the picture: \(averrorText(result))")
        }
        while true {
            result = avcodec_receive_packet(context, packet.pointer)
            if result == averrorEOF || result == averrorEAGAIN { break }
            if result < 0 { throw MediaError(.encodeFailed, "image encoding failed: \(averrorText(result))") }
            output.append(contentsOf: UnsafeBufferPointer(start: packet.pointer.pointee.data, count: Int(packet.pointer.pointee.size)))
            av_packet_unref(packet.pointer)
        }
        if output.isEmpty { throw MediaError(.encodeFailed, "the image encoder produced nothing") }
        return output
    }

    /// A picture with FFmpeg's own allocation: aligned rows and the trailing padding its SIMD code reads past the
    /// last pixel (a Swift array as swscale's source was read 12 bytes beyond its end under valgrind).
    static func picture(_ format: AVPixelFormat, width: Int, height: Int) throws(MediaError) -> Frame {
        let frame = try Frame()
        frame.pointer.pointee.width = Int32(width)
        frame.pointer.pointee.height = Int32(height)
        frame.pointer.pointee.format = format.rawValue
        let result = av_frame_get_buffer(frame.pointer, 0)
        if result < 0 {
            throw MediaError(.encodeFailed, "out of memory (\(width)x\(height) picture): \(averrorText(result))")
        }
        return frame
    }

    /// RGB to full-range YUV 4:2:0 for JPEG.
    private static func convert(_ source: UnsafeMutablePointer<AVFrame>, into target: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        let width = source.pointee.width, height = source.pointee.height
        let converter = Converter(
            sws_getContext(
                width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUVJ420P, SWS_BICUBIC, nil, nil, nil))
        guard let context = converter.context else {
            throw MediaError(.encodeFailed, "swscale cannot convert RGB to YUV for JPEG")
        }
        let rows = withUnsafePointer(to: &source.pointee.data) { sourceData in
            sourceData.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { sourcePlanes in
                withUnsafePointer(to: &source.pointee.linesize) { sourceLines in
                    sourceLines.withMemoryRebound(to: Int32.self, capacity: 8) { sourceStrides in
                        withUnsafePointer(to: &target.pointee.data) { data in
                            data.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { planes in
                                withUnsafePointer(to: &target.pointee.linesize) { lines in
                                    lines.withMemoryRebound(to: Int32.self, capacity: 8) { strides in
                                        sws_scale(context, sourcePlanes, sourceStrides, 0, height, planes, strides)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if rows <= 0 { throw MediaError(.encodeFailed, "RGB to YUV conversion failed") }
    }
}

/// Owner of a one-shot SwsContext.
struct Converter: ~Copyable {
    let context: OpaquePointer?

    init(_ context: OpaquePointer?) {
        self.context = context
    }

    deinit {
        sws_freeContext(context)
    }
}
