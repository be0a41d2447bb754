internal import CFFmpeg

/// How a stored picture maps onto its upright display: optionally transpose, then mirror each axis. The eight
/// combinations cover every rotation by a multiple of 90° with or without a mirror.
struct Orientation: Equatable {
    var transpose = false
    var flipX = false
    var flipY = false

    static let upright = Orientation()

    /// Reads a display matrix the way the ffmpeg CLI does for autorotation, so our frames match what people see in
    /// players (including ffmpeg's own output); angles that are not a multiple of 90° are ignored.
    init(displayMatrix matrix: UnsafePointer<Int32>?) {
        guard let matrix else { return }
        let angle = av_display_rotation_get(matrix)
        guard angle.isFinite else { return }
        var theta = -angle.rounded()
        theta -= 360 * (theta / 360 + 0.9 / 360).rounded(.down)
        if abs(theta - 90) < 1 {
            // ffmpeg: transpose=cclock_flip when matrix[3] > 0, else transpose=clock.
            self = matrix[3] > 0 ? Orientation(transpose: true) : Orientation(transpose: true, flipX: true)
        } else if abs(theta - 180) < 1 {
            self = Orientation(flipX: matrix[0] < 0, flipY: matrix[4] < 0)
        } else if abs(theta - 270) < 1 {
            // ffmpeg: transpose=clock_flip when matrix[3] < 0, else transpose=cclock.
            self = matrix[3] < 0
                ? Orientation(transpose: true, flipX: true, flipY: true) : Orientation(transpose: true, flipY: true)
        } else if abs(theta) < 1 || abs(theta - 360) < 1 {
            self = Orientation(flipY: matrix[4] < 0)
        }
    }

    init(transpose: Bool = false, flipX: Bool = false, flipY: Bool = false) {
        self.transpose = transpose
        self.flipX = flipX
        self.flipY = flipY
    }

    init() {}

    static func of(stream: UnsafeMutablePointer<AVStream>) -> Orientation? {
        guard let data = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, nil) else { return nil }
        return Orientation(displayMatrix: UnsafeRawPointer(data).assumingMemoryBound(to: Int32.self))
    }

    /// `MediaProbe.rotation`: what ffprobe prints for the stream's display matrix, `(int)av_display_rotation_get()`
    /// (a C conversion, so truncated toward zero), or 0 when there is none or it is degenerate.
    static func ffprobeRotation(stream: UnsafeMutablePointer<AVStream>) -> Int {
        guard let data = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, nil) else { return 0 }
        let angle = av_display_rotation_get(UnsafeRawPointer(data).assumingMemoryBound(to: Int32.self))
        return angle.isFinite ? Int(angle.rounded(.towardZero)) : 0
    }

    static func of(frame: UnsafeMutablePointer<AVFrame>) -> Orientation? {
        guard let side = av_frame_get_side_data(frame, AV_FRAME_DATA_DISPLAYMATRIX), side.pointee.size >= 36 else {
            return nil
        }
        return Orientation(displayMatrix: UnsafeRawPointer(side.pointee.data).assumingMemoryBound(to: Int32.self))
    }
}

/// swscale's resampling filter.
enum ScaleFilter: Equatable {
    /// The ffmpeg CLI's default: the frames match `ffmpeg -vf scale` exactly.
    case bicubic
    /// Averages the source pixels each output pixel covers (bilinear when enlarging): as free of aliasing as bicubic
    /// when shrinking, at about half its cost (0.8 vs 1.7 ms for ten 320×240 → 112×112 RGB frames), and 37 dB PSNR
    /// from bicubic's output on the bench clips. Used by `DecodeMode.fast`.
    case area

    init(_ mode: DecodeMode) {
        self = mode == .fast ? .area : .bicubic
    }

    var swsFlags: Int32 {
        switch self {
        case .bicubic: SWS_BICUBIC
        case .area: SWS_AREA
        }
    }
}

/// Converts decoded pictures to packed RGB24 or GRAY8 of a target size: swscale does the pixel-format conversion and
/// resampling into a scratch image in stored orientation, then one pass places it upright into the output, with the
/// letterbox (pad) or the crop. Owns the SwsContext (reused while the source format stays the same) and the aligned
/// scratch memory.
struct Scaler: ~Copyable {
    private let filter: ScaleFilter
    private var context: OpaquePointer?
    private var scratch: UnsafeMutablePointer<UInt8>?
    private var scratchCapacity = 0
    private var colorKey: [Int32] = []

    init(filter: ScaleFilter = .bicubic) {
        self.filter = filter
    }

    deinit {
        sws_freeContext(context)
        av_free(scratch)
    }

    /// Appends `width`×`height`×channels bytes to `output`.
    mutating func render(
        _ source: UnsafeMutablePointer<AVFrame>, orientation: Orientation, width: Int, height: Int, mode: ResizeMode,
        format: PixelFormat, into output: inout [UInt8]
    ) throws(MediaError) {
        let sourceWidth = Int(source.pointee.width)
        let sourceHeight = Int(source.pointee.height)
        guard sourceWidth > 0, sourceHeight > 0, width > 0, height > 0 else {
            throw MediaError(.decodeFailed, "decoded picture has no size (\(sourceWidth)x\(sourceHeight))")
        }
        let displayWidth = orientation.transpose ? sourceHeight : sourceWidth
        let displayHeight = orientation.transpose ? sourceWidth : sourceHeight

        // The scaled picture in display coordinates, and where its top-left corner lands in the output.
        var scaledWidth = width
        var scaledHeight = height
        var offsetX = 0
        var offsetY = 0
        var crop: (left: Int, top: Int, width: Int, height: Int)?
        switch mode {
        case .stretch:
            break
        case .pad:
            let scale = min(Double(width) / Double(displayWidth), Double(height) / Double(displayHeight))
            scaledWidth = min(width, max(1, Int((Double(displayWidth) * scale).rounded())))
            scaledHeight = min(height, max(1, Int((Double(displayHeight) * scale).rounded())))
            offsetX = (width - scaledWidth) / 2
            offsetY = (height - scaledHeight) / 2
        case .crop:
            // Cut the source to the target's aspect ratio before scaling, so an extreme aspect ratio never scales to
            // a huge intermediate picture.
            let scale = max(Double(width) / Double(displayWidth), Double(height) / Double(displayHeight))
            let keptWidth = min(displayWidth, max(1, Int((Double(width) / scale).rounded())))
            let keptHeight = min(displayHeight, max(1, Int((Double(height) / scale).rounded())))
            let storedWidth = orientation.transpose ? keptHeight : keptWidth
            let storedHeight = orientation.transpose ? keptWidth : keptHeight
            if storedWidth != sourceWidth || storedHeight != sourceHeight {
                crop = ((sourceWidth - storedWidth) / 2, (sourceHeight - storedHeight) / 2, storedWidth, storedHeight)
            }
        }

        let storedWidth = orientation.transpose ? scaledHeight : scaledWidth
        let storedHeight = orientation.transpose ? scaledWidth : scaledHeight
        let sourceFormat = AVPixelFormat(rawValue: source.pointee.format)
        let hasAlpha = (av_pix_fmt_desc_get(sourceFormat)?.pointee.flags ?? 0) & UInt64(AV_PIX_FMT_FLAG_ALPHA) != 0
        let scratchFormat: AVPixelFormat
        let scratchChannels: Int
        switch (format, hasAlpha) {
        case (.rgb24, false): (scratchFormat, scratchChannels) = (AV_PIX_FMT_RGB24, 3)
        case (.rgb24, true): (scratchFormat, scratchChannels) = (AV_PIX_FMT_RGBA, 4)
        case (.gray8, false): (scratchFormat, scratchChannels) = (AV_PIX_FMT_GRAY8, 1)
        case (.gray8, true): (scratchFormat, scratchChannels) = (AV_PIX_FMT_YA8, 2)
        }
        // Rows 64-byte aligned, plus slack: some swscale SIMD paths store whole vectors past the last pixel.
        let stride = (storedWidth * scratchChannels + 63) & ~63
        try reserveScratch(stride * storedHeight + 64)

        let cropped = try Frame()
        guard av_frame_ref(cropped.pointer, source) >= 0 else {
            throw MediaError(.decodeFailed, "out of memory (frame reference)")
        }
        if let crop {
            cropped.pointer.pointee.crop_left = crop.left
            cropped.pointer.pointee.crop_top = crop.top
            cropped.pointer.pointee.crop_right = sourceWidth - crop.left - crop.width
            cropped.pointer.pointee.crop_bottom = sourceHeight - crop.top - crop.height
            let result = av_frame_apply_cropping(cropped.pointer, Int32(AV_FRAME_CROP_UNALIGNED))
            if result < 0 {
                throw MediaError(.decodeFailed, "cannot crop a \(sourceWidth)x\(sourceHeight) picture: \(averrorText(result))")
            }
        }
        let frame = cropped.pointer
        context = sws_getCachedContext(
            context, frame.pointee.width, frame.pointee.height, sourceFormat, Int32(storedWidth), Int32(storedHeight),
            scratchFormat, filter.swsFlags, nil, nil, nil)
        guard let context else {
            let name = cString(av_get_pix_fmt_name(sourceFormat)) ?? "\(sourceFormat.rawValue)"
            throw MediaError(.decodeFailed, "swscale cannot convert \(name) \(sourceWidth)x\(sourceHeight)")
        }
        setColorDetails(
            context, frame: frame, formatIsJPEG: sourceFormat.isFullRangeYUV,
            geometry: [frame.pointee.width, frame.pointee.height, sourceFormat.rawValue, Int32(storedWidth),
                       Int32(storedHeight), scratchFormat.rawValue])

        var destination: [UnsafeMutablePointer<UInt8>?] = [scratch, nil, nil, nil]
        var destinationStride: [Int32] = [Int32(stride), 0, 0, 0]
        let rows = withUnsafePointer(to: &frame.pointee.data) { data in
            data.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { planes in
                withUnsafePointer(to: &frame.pointee.linesize) { lines in
                    lines.withMemoryRebound(to: Int32.self, capacity: 8) { strides in
                        sws_scale(context, planes, strides, 0, frame.pointee.height, &destination, &destinationStride)
                    }
                }
            }
        }
        if rows <= 0 {
            throw MediaError(.decodeFailed, "swscale failed on a \(sourceWidth)x\(sourceHeight) picture")
        }

        place(
            stride: stride, channels: scratchChannels, scaledWidth: scaledWidth, scaledHeight: scaledHeight,
            orientation: orientation, offsetX: offsetX, offsetY: offsetY, width: width, height: height,
            outputChannels: format.channels, into: &output)
    }

    private mutating func reserveScratch(_ bytes: Int) throws(MediaError) {
        if bytes <= scratchCapacity { return }
        av_free(scratch)
        scratch = av_malloc(bytes)?.assumingMemoryBound(to: UInt8.self)
        scratchCapacity = scratch == nil ? 0 : bytes
        if scratch == nil { throw MediaError(.decodeFailed, "out of memory (\(bytes) bytes of scratch image)") }
    }

    /// Decoders tag frames with their matrix and range; swscale only knows them if told, and re-telling it rebuilds
    /// its tables, so only on change.
    private mutating func setColorDetails(
        _ context: OpaquePointer, frame: UnsafeMutablePointer<AVFrame>, formatIsJPEG: Bool, geometry: [Int32]
    ) {
        let fullRange: Int32 = formatIsJPEG || frame.pointee.color_range == AVCOL_RANGE_JPEG ? 1 : 0
        // sws_getCachedContext builds a new context exactly when the geometry or formats change.
        let key = geometry + [Int32(frame.pointee.colorspace.rawValue), fullRange]
        if key == colorKey { return }
        colorKey = key
        let matrix: Int32
        switch frame.pointee.colorspace {
        case AVCOL_SPC_BT709: matrix = SWS_CS_ITU709
        case AVCOL_SPC_FCC: matrix = SWS_CS_FCC
        case AVCOL_SPC_SMPTE240M: matrix = SWS_CS_SMPTE240M
        case AVCOL_SPC_BT2020_NCL, AVCOL_SPC_BT2020_CL: matrix = SWS_CS_BT2020
        default: matrix = SWS_CS_DEFAULT
        }
        // Output is full range: RGB always is, and gray8 should use 0…255 like the RGB it stands for.
        sws_setColorspaceDetails(
            context, sws_getCoefficients(matrix), fullRange, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16,
            1 << 16)
    }

    /// Writes the scratch picture upright into the output canvas (black where it does not reach), flattening alpha
    /// onto white so transparent regions do not turn into black ones.
    private func place(
        stride: Int, channels: Int, scaledWidth: Int, scaledHeight: Int, orientation: Orientation, offsetX: Int,
        offsetY: Int, width: Int, height: Int, outputChannels: Int, into output: inout [UInt8]
    ) {
        let base = output.count
        output.append(contentsOf: repeatElement(0, count: width * height * outputChannels))
        guard let scratch else { return }
        let xRange = max(0, offsetX)..<min(width, offsetX + scaledWidth)
        let yRange = max(0, offsetY)..<min(height, offsetY + scaledHeight)
        guard !xRange.isEmpty, !yRange.isEmpty else { return }
        output.withUnsafeMutableBufferPointer { buffer in
            let canvas = buffer.baseAddress! + base
            if !orientation.transpose && !orientation.flipX && channels == outputChannels {
                for y in yRange {
                    let row = y - offsetY
                    let sourceRow = orientation.flipY ? scaledHeight - 1 - row : row
                    (canvas + (y * width + xRange.lowerBound) * outputChannels).update(
                        from: scratch + sourceRow * stride + (xRange.lowerBound - offsetX) * channels,
                        count: xRange.count * outputChannels)
                }
                return
            }
            for y in yRange {
                let displayY = y - offsetY
                let uprightY = orientation.flipY ? scaledHeight - 1 - displayY : displayY
                var target = canvas + (y * width + xRange.lowerBound) * outputChannels
                for x in xRange {
                    let displayX = x - offsetX
                    let uprightX = orientation.flipX ? scaledWidth - 1 - displayX : displayX
                    let (storedX, storedY) = orientation.transpose ? (uprightY, uprightX) : (uprightX, uprightY)
                    let pixel = scratch + storedY * stride + storedX * channels
                    if channels == outputChannels {
                        for c in 0..<channels { target[c] = pixel[c] }
                    } else {
                        let alpha = Int(pixel[channels - 1])
                        for c in 0..<outputChannels {
                            target[c] = UInt8((Int(pixel[c]) * alpha + 255 * (255 - alpha) + 127) / 255)
                        }
                    }
                    target += outputChannels
                }
            }
        }
    }
}

extension AVPixelFormat {
    /// The deprecated yuvj formats carry "full range" in the format itself rather than in the frame.
    var isFullRangeYUV: Bool {
        self == AV_PIX_FMT_YUVJ420P || self == AV_PIX_FMT_YUVJ422P || self == AV_PIX_FMT_YUVJ444P
            || self == AV_PIX_FMT_YUVJ440P || self == AV_PIX_FMT_YUVJ411P
    }
}
