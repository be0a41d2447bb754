internal import CFFmpeg

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of one input behind FFmpeg's read and seek callbacks: an array in memory, or a file read with `pread`
/// (so no protocol handler ever sees a path, and nothing is copied to a temp file).
///
/// It also records how the demuxer used the input, because that is how a truncated file is told from a corrupt one:
/// a demuxer seeking past the last byte was promised data the file does not have.
final class ByteSource {
    fileprivate enum Storage {
        case memory([UInt8])
        /// Released by a `MediaFile` (which did the checks); closed in `deinit`.
        case file(Int32)
    }

    fileprivate let storage: Storage
    let size: Int64
    let label: String
    private var position: Int64 = 0
    /// The demuxer asked to seek beyond the last byte (by itself: seeks we ask for are forgiven by `Demuxer.seek`).
    var seekedPastEnd = false
    /// A read found nothing left.
    private(set) var reachedEnd = false
    /// The demuxer tried to open another URL or file (a playlist, a reference); always refused.
    var refusedNestedOpen: String?

    private init(storage: Storage, size: Int64, label: String) {
        self.storage = storage
        self.size = size
        self.label = label
    }

    deinit {
        if case .file(let fd) = storage {
            close(fd)
        }
    }

    static func from(_ input: MediaInput, limits: MediaLimits) throws(MediaError) -> ByteSource {
        switch input {
        case .bytes(let bytes):
            try Media.checkInputSize(bytes.count, limits: limits, label: "input")
            return ByteSource(storage: .memory(bytes), size: Int64(bytes.count), label: "\(bytes.count) bytes")
        case .file(let path):
            let file = try MediaFile.open(path, limits: limits)
            let size = file.size
            return ByteSource(storage: .file(file.release()), size: size, label: path)
        }
    }

    /// The first bytes, for header sniffing before FFmpeg sees the input.
    func prefix(_ count: Int) -> [UInt8] {
        bytes(at: 0, count: count)
    }

    /// Up to `count` bytes at `offset` (fewer at the end), without moving the demuxer's position.
    func bytes(at offset: Int64, count: Int) -> [UInt8] {
        guard offset >= 0, offset < size, count > 0 else { return [] }
        let count = Int(min(Int64(count), size - offset))
        switch storage {
        case .memory(let bytes):
            return Array(bytes[Int(offset)..<Int(offset) + count])
        case .file(let fd):
            var out = [UInt8](repeating: 0, count: count)
            let got = out.withUnsafeMutableBytes { preadFully(fd, $0, offset) }
            return got > 0 ? Array(out[0..<got]) : []
        }
    }

    func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int32) -> Int32 {
        guard position < size else {
            reachedEnd = true
            return averrorEOF
        }
        let wanted = Int(min(Int64(count), size - position))
        switch storage {
        case .memory(let bytes):
            bytes.withUnsafeBufferPointer { all in
                buffer.update(from: all.baseAddress! + Int(position), count: wanted)
            }
            position += Int64(wanted)
            return Int32(wanted)
        case .file(let fd):
            let got = preadRetrying(fd, buffer, wanted, position)
            if got < 0 { return etl_averror(errno) }
            if got == 0 {
                reachedEnd = true
                return averrorEOF
            }
            position += Int64(got)
            return Int32(got)
        }
    }

    func seek(offset: Int64, whence: Int32) -> Int64 {
        if whence & AVSEEK_SIZE != 0 { return size }
        let target: Int64
        switch whence & ~AVSEEK_FORCE {
        case SEEK_SET: target = offset
        case SEEK_CUR: target = position + offset
        case SEEK_END: target = size + offset
        default: return Int64(etl_averror(EINVAL))
        }
        if target < 0 { return Int64(etl_averror(EINVAL)) }
        if target > size { seekedPastEnd = true }
        position = target
        return target
    }
}

func sourceRead(_ opaque: UnsafeMutableRawPointer?, _ buffer: UnsafeMutablePointer<UInt8>?, _ count: Int32) -> Int32 {
    guard let opaque, let buffer, count > 0 else { return 0 }
    return Unmanaged<ByteSource>.fromOpaque(opaque).takeUnretainedValue().read(into: buffer, count: count)
}

func sourceSeek(_ opaque: UnsafeMutableRawPointer?, _ offset: Int64, _ whence: Int32) -> Int64 {
    guard let opaque else { return -1 }
    return Unmanaged<ByteSource>.fromOpaque(opaque).takeUnretainedValue().seek(offset: offset, whence: whence)
}

extension ByteSource {
    /// All bytes at once, for walking the structure of a still image. A file is read into memory; callers only do
    /// this for inputs within `maxInputBytes`.
    func withAllBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        switch storage {
        case .memory(let bytes):
            return bytes.withUnsafeBytes(body)
        case .file(let fd):
            var bytes = [UInt8](repeating: 0, count: Int(size))
            let done = max(0, bytes.withUnsafeMutableBytes { preadFully(fd, $0, 0) })
            return bytes[0..<done].withUnsafeBytes(body)
        }
    }
}
