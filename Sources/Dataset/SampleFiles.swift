import Foundation
import MDS

/// Turns one sample's values into files a person can open (`etl head --extract`), and into one-line summaries.
/// Pure: bytes in, bytes out.
///
/// - `ndarray:uint8` shaped (T, H, W, C) or (H, W, C) with C = 1, 3 or 4: one PNG per frame;
/// - `ndarray:int16` / `ndarray:float32` shaped (frames, channels) (or (frames)): a WAV file (PCM 16 / IEEE float);
/// - `jpeg`, `png`: the stored bytes as `.jpg` / `.png`; `bytes`: `.bin`; `json`: `.json`; other values: `.txt`.
public enum SampleFiles {
    public struct File: Sendable, Equatable {
        public var name: String
        public var bytes: [UInt8]
        public init(name: String, bytes: [UInt8]) {
            self.name = name
            self.bytes = bytes
        }
    }

    /// The files for one column's value. `encoding` is the column's encoding name (`jpeg`, `ndarray:uint8`, …).
    public static func files(column: String, encoding: String, value: MDSValue, sampleRate: Int) -> [File] {
        switch value {
        case .bytes(let bytes):
            let ext = encoding == "jpeg" ? "jpg" : encoding == "png" ? "png" : "bin"
            return [File(name: "\(column).\(ext)", bytes: bytes)]
        case .borrowedBytes:
            return files(column: column, encoding: encoding, value: value.owned, sampleRate: sampleRate)
        case .json(let text):
            return [File(name: "\(column).json", bytes: Array(text.utf8))]
        case .ndarray(let array):
            if array.dtype == .uint8, let frames = imageFrames(array.shape) {
                let (count, height, width, channels) = frames
                let frameBytes = height * width * channels
                if count == 1 && array.shape.count == 3 {
                    return [File(name: "\(column).png", bytes: png(width: width, height: height, channels: channels, pixels: array.data[...]))]
                }
                return (0..<count).map { index in
                    let start = index * frameBytes
                    return File(name: "\(column)_\(pad(index, count)).png",
                                bytes: png(width: width, height: height, channels: channels, pixels: array.data[start..<start + frameBytes]))
                }
            }
            if array.dtype == .int16 || array.dtype == .float32, (1...2).contains(array.shape.count), array.shape.allSatisfy({ $0 > 0 }) {
                let channels = array.shape.count == 2 ? array.shape[1] : 1
                return [File(name: "\(column).wav", bytes: wav(array.data, channels: channels, sampleRate: sampleRate, float: array.dtype == .float32))]
            }
            return [File(name: "\(column).npy.txt", bytes: Array(summary(value).utf8))]
        default:
            return [File(name: "\(column).txt", bytes: Array((plainText(value) + "\n").utf8))]
        }
    }

    /// (frames, height, width, channels) for a shape an image can be made of.
    static func imageFrames(_ shape: [Int]) -> (Int, Int, Int, Int)? {
        let dims = shape.count == 3 ? [1] + shape : shape
        guard dims.count == 4, [1, 3, 4].contains(dims[3]), dims.allSatisfy({ $0 > 0 }) else { return nil }
        return (dims[0], dims[1], dims[2], dims[3])
    }

    private static func pad(_ index: Int, _ count: Int) -> String {
        let digits = max(3, String(count - 1).count)
        let text = String(index)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    /// A value as one line: plain values as they are, media as shape, dtype, size and content hash.
    public static func summary(_ value: MDSValue) -> String {
        switch value {
        case .bytes(let bytes):
            return "\(bytes.count) bytes, sha256 \(VersionDiff.sha256Hex(bytes).prefix(16))"
        case .borrowedBytes:
            return summary(value.owned)
        case .ndarray(let array):
            let shape = "(" + array.shape.map(String.init).joined(separator: ", ") + (array.shape.count == 1 ? ",)" : ")")
            return "\(array.dtype.rawValue) \(shape), \(array.data.count) bytes, sha256 \(VersionDiff.sha256Hex(array.data).prefix(16))"
        default:
            let text = plainText(value)
            return text.count > 120 ? String(text.prefix(117)) + "…" : text
        }
    }

    static func plainText(_ value: MDSValue) -> String {
        switch value {
        case .string(let text): text
        case .int(let number): String(number)
        case .uint(let number): String(number)
        case .float(let number): String(number)
        case .json(let text): text
        case .bytes, .borrowedBytes, .ndarray: summary(value)
        }
    }

    // MARK: PNG

    /// An 8-bit PNG (gray, RGB or RGBA). The image data is a zlib stream of *stored* deflate blocks: no
    /// compression, so no compressor to get wrong, and every PNG reader accepts it.
    public static func png(width: Int, height: Int, channels: Int, pixels: ArraySlice<UInt8>) -> [UInt8] {
        precondition(pixels.count == width * height * channels, "PNG pixel count does not match its size")
        let colorType: UInt8 = channels == 1 ? 0 : channels == 3 ? 2 : 6
        var raw: [UInt8] = []
        raw.reserveCapacity(height * (width * channels + 1))
        let rowBytes = width * channels
        for row in 0..<height {
            raw.append(0)  // filter: none
            let start = pixels.startIndex + row * rowBytes
            raw.append(contentsOf: pixels[start..<start + rowBytes])
        }
        var header: [UInt8] = []
        header.appendBigEndian(UInt32(width))
        header.appendBigEndian(UInt32(height))
        header += [8, colorType, 0, 0, 0]
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        appendChunk("IHDR", header, to: &png)
        appendChunk("IDAT", zlibStored(raw), to: &png)
        appendChunk("IEND", [], to: &png)
        return png
    }

    public static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var position = 0
        repeat {
            let length = min(65535, data.count - position)
            let last = position + length == data.count
            out.append(last ? 1 : 0)
            out += [UInt8(length & 0xff), UInt8(length >> 8), UInt8(~length & 0xff), UInt8((~length >> 8) & 0xff)]
            out += data[position..<position + length]
            position += length
        } while position < data.count
        out.appendBigEndian(adler32(data))
        return out
    }

    public static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for chunkStart in stride(from: 0, to: data.count, by: 5552) {
            for byte in data[chunkStart..<min(chunkStart + 5552, data.count)] {
                a += UInt32(byte)
                b += a
            }
            a %= 65521
            b %= 65521
        }
        return b << 16 | a
    }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = crcTable[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    private static func appendChunk(_ type: String, _ data: [UInt8], to png: inout [UInt8]) {
        png.appendBigEndian(UInt32(data.count))
        let typed = Array(type.utf8) + data
        png += typed
        png.appendBigEndian(crc32(typed))
    }

    // MARK: WAV

    /// A RIFF WAVE file around interleaved little-endian samples (what MDS stores): PCM 16-bit or IEEE float 32.
    public static func wav(_ samples: [UInt8], channels: Int, sampleRate: Int, float: Bool) -> [UInt8] {
        let bits = float ? 32 : 16
        let blockAlign = channels * bits / 8
        var out = Array("RIFF".utf8)
        out.appendLittle(UInt32(36 + samples.count))
        out += Array("WAVEfmt ".utf8)
        out.appendLittle(UInt32(16))
        out.appendLittle(UInt16(float ? 3 : 1))
        out.appendLittle(UInt16(channels))
        out.appendLittle(UInt32(sampleRate))
        out.appendLittle(UInt32(sampleRate * blockAlign))
        out.appendLittle(UInt16(blockAlign))
        out.appendLittle(UInt16(bits))
        out += Array("data".utf8)
        out.appendLittle(UInt32(samples.count))
        return out + samples
    }
}

extension Array where Element == UInt8 {
    fileprivate mutating func appendBigEndian(_ value: UInt32) {
        append(contentsOf: [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)])
    }

    fileprivate mutating func appendLittle<T: FixedWidthInteger>(_ value: T) {
        for index in 0..<(T.bitWidth / 8) { append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }
}
