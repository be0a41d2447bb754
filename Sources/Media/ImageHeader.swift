/// A look at still-image headers before FFmpeg sees them.
///
/// Image demuxers hand the whole file to the decoder, which learns the picture size only as it decodes; reading the
/// size ourselves lets a hostile header (a PNG claiming 60000×60000) be refused before anything is allocated. Walking
/// the chunk/marker structure also tells a cut file from a damaged one, which the decoders do not: a JPEG decoder
/// happily returns a half-grey picture for a file cut in the middle.
enum ImageHeader {
    struct Info {
        var format: String
        var width = 0
        var height = 0
        /// Why the structure ends early, or nil when it is complete (or not walked).
        var truncated: String?
    }

    static func check(_ source: ByteSource, limits: MediaLimits) throws(MediaError) {
        let head = source.prefix(16)
        guard isPNG(head) || isJPEG(head) || isGIF(head) || isBMP(head) || isWebP(head) else { return }
        let info = source.withAllBytes { inspect(Bytes($0)) }
        guard let info else { return }
        try checkPictureSize(width: info.width, height: info.height, limits: limits, what: "the \(info.format) header")
        if let truncated = info.truncated, !limits.acceptTruncated {
            throw MediaError(.truncated, "\(source.label): \(info.format) \(truncated)")
        }
    }

    static func inspect(_ bytes: Bytes) -> Info? {
        let head = bytes.prefix(16)
        if isPNG(head) { return png(bytes) }
        if isJPEG(head) { return jpeg(bytes) }
        if isGIF(head) { return gif(bytes) }
        if isBMP(head) { return bmp(bytes) }
        if isWebP(head) { return webp(bytes) }
        return nil
    }

    private static func isPNG(_ h: [UInt8]) -> Bool { h.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) }
    private static func isJPEG(_ h: [UInt8]) -> Bool { h.starts(with: [0xFF, 0xD8, 0xFF]) }
    private static func isGIF(_ h: [UInt8]) -> Bool { h.starts(with: Array("GIF87a".utf8)) || h.starts(with: Array("GIF89a".utf8)) }
    private static func isBMP(_ h: [UInt8]) -> Bool { h.count >= 18 && h.starts(with: Array("BM".utf8)) }
    private static func isWebP(_ h: [UInt8]) -> Bool {
        h.count >= 16 && h.starts(with: Array("RIFF".utf8)) && Array(h[8..<12]) == Array("WEBP".utf8)
    }

    private static func png(_ b: Bytes) -> Info {
        var info = Info(format: "PNG")
        if b.count >= 24, b.tag(12) == "IHDR" {
            info.width = b.be32(16)
            info.height = b.be32(20)
        }
        var position = 8
        while true {
            guard position + 8 <= b.count else {
                info.truncated = "ends at byte \(b.count) without an IEND chunk"
                return info
            }
            let length = b.be32(position)
            let type = b.tag(position + 4)
            let next = position + 12 + length
            if length > 0x7fff_ffff || next > b.count {
                info.truncated = "chunk \(type) at byte \(position) runs past the end (\(b.count) bytes)"
                return info
            }
            if type == "IEND" { return info }
            position = next
        }
    }

    private static func jpeg(_ b: Bytes) -> Info {
        var info = Info(format: "JPEG")
        var position = 2
        while true {
            // Markers may be preceded by any number of 0xFF fill bytes.
            guard position < b.count, b[position] == 0xFF else {
                if position >= b.count { info.truncated = "ends at byte \(b.count) without an EOI marker" }
                return info
            }
            while position < b.count && b[position] == 0xFF { position += 1 }
            guard position < b.count else {
                info.truncated = "ends at byte \(b.count) without an EOI marker"
                return info
            }
            let marker = b[position]
            position += 1
            switch marker {
            case 0xD9:
                return info
            case 0x01, 0xD0...0xD8:
                continue
            default:
                guard position + 2 <= b.count else {
                    info.truncated = "ends inside the segment header of marker 0x\(String(marker, radix: 16))"
                    return info
                }
                let length = b.be16(position)
                let isFrameHeader = (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker)
                if isFrameHeader && info.width == 0 && position + 7 <= b.count {
                    info.height = b.be16(position + 3)
                    info.width = b.be16(position + 5)
                }
                position += length
                guard position <= b.count else {
                    info.truncated = "segment 0x\(String(marker, radix: 16)) runs past the end (\(b.count) bytes)"
                    return info
                }
                if marker == 0xDA {
                    // Entropy-coded data: 0xFF is always followed by a stuffed 0x00 or a restart marker, so the
                    // next other marker is found by scanning.
                    while position + 1 < b.count {
                        if b[position] == 0xFF {
                            let next = b[position + 1]
                            if next != 0x00 && !(0xD0...0xD7).contains(next) && next != 0xFF { break }
                        }
                        position += 1
                    }
                    if position + 1 >= b.count {
                        info.truncated = "scan data ends at byte \(b.count) without an EOI marker"
                        return info
                    }
                }
            }
        }
    }

    private static func gif(_ b: Bytes) -> Info {
        var info = Info(format: "GIF")
        guard b.count >= 13 else {
            info.truncated = "ends inside the header"
            return info
        }
        info.width = b.le16(6)
        info.height = b.le16(8)
        var position = 13
        if b[10] & 0x80 != 0 { position += 3 << (Int(b[10] & 7) + 1) }
        func skipSubBlocks(_ position: inout Int) -> Bool {
            while position < b.count {
                let size = Int(b[position])
                position += 1 + size
                if size == 0 { return position <= b.count }
            }
            return false
        }
        while true {
            guard position < b.count else {
                info.truncated = "ends at byte \(b.count) without a trailer"
                return info
            }
            switch b[position] {
            case 0x3B:
                return info
            case 0x21:
                position += 2
                guard skipSubBlocks(&position) else {
                    info.truncated = "extension block runs past the end (\(b.count) bytes)"
                    return info
                }
            case 0x2C:
                guard position + 10 <= b.count else {
                    info.truncated = "ends inside an image descriptor"
                    return info
                }
                let flags = b[position + 9]
                position += 10
                if flags & 0x80 != 0 { position += 3 << (Int(flags & 7) + 1) }
                position += 1
                guard skipSubBlocks(&position) else {
                    info.truncated = "image data runs past the end (\(b.count) bytes)"
                    return info
                }
            default:
                // Not a block we know: leave the verdict to the decoder.
                return info
            }
        }
    }

    private static func bmp(_ b: Bytes) -> Info {
        var info = Info(format: "BMP")
        guard b.count >= 26 else {
            info.truncated = "ends inside the header"
            return info
        }
        let headerSize = b.le32(14)
        if headerSize == 12 {
            info.width = b.le16(18)
            info.height = b.le16(20)
            return info
        }
        guard b.count >= 34 else {
            info.truncated = "ends inside the header"
            return info
        }
        info.width = abs(Int(Int32(bitPattern: UInt32(b.le32(18)))))
        info.height = abs(Int(Int32(bitPattern: UInt32(b.le32(22)))))
        let bitsPerPixel = b.le16(28)
        let compression = b.le32(30)
        if compression == 0, [1, 4, 8, 16, 24, 32].contains(bitsPerPixel), info.width <= 1 << 20, info.height <= 1 << 20 {
            let stride = (info.width * bitsPerPixel + 31) / 32 * 4
            let needed = b.le32(10) + stride * info.height
            if needed > b.count {
                info.truncated = "pixel data needs \(needed) bytes but the file has \(b.count)"
            }
        }
        return info
    }

    private static func webp(_ b: Bytes) -> Info {
        var info = Info(format: "WebP")
        let riffEnd = 8 + b.le32(4)
        if riffEnd > b.count {
            info.truncated = "RIFF chunk declares \(riffEnd) bytes but the file has \(b.count)"
        }
        guard b.count >= 30 else { return info }
        switch b.tag(12) {
        case "VP8X":
            info.width = b.le24(24) + 1
            info.height = b.le24(27) + 1
        case "VP8L":
            let bits = b.le32(21)
            info.width = (bits & 0x3FFF) + 1
            info.height = ((bits >> 14) & 0x3FFF) + 1
        case "VP8 ":
            info.width = b.le16(26) & 0x3FFF
            info.height = b.le16(28) & 0x3FFF
        default:
            break
        }
        return info
    }
}

/// Bounds-checked reads over raw bytes; out-of-range reads give 0 rather than trapping on hostile input.
struct Bytes {
    let raw: UnsafeRawBufferPointer

    init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }

    var count: Int { raw.count }

    subscript(_ index: Int) -> UInt8 { index >= 0 && index < raw.count ? raw[index] : 0 }

    func prefix(_ n: Int) -> [UInt8] { Array(raw.prefix(n)) }

    func be16(_ i: Int) -> Int { Int(self[i]) << 8 | Int(self[i + 1]) }
    func be32(_ i: Int) -> Int { Int(self[i]) << 24 | Int(self[i + 1]) << 16 | Int(self[i + 2]) << 8 | Int(self[i + 3]) }
    func le16(_ i: Int) -> Int { Int(self[i]) | Int(self[i + 1]) << 8 }
    func le24(_ i: Int) -> Int { Int(self[i]) | Int(self[i + 1]) << 8 | Int(self[i + 2]) << 16 }
    func le32(_ i: Int) -> Int { le16(i) | le16(i + 2) << 16 }
    func tag(_ i: Int) -> String { String(decoding: (i..<i + 4).map { self[$0] }, as: UTF8.self) }
}
