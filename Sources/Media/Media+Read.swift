#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Media {
    /// The input's bytes as they are, under the same checks as every other `Media` operation: an empty input is
    /// `empty`, one over `limits.maxInputBytes` is `tooLarge`, a missing or non-regular file is `fileNotFound`.
    /// A file's size is checked with `fstat` on the opened descriptor before anything is read, so an over-limit file
    /// costs no reading and no memory; it is then read with EINTR-safe `pread`s. A file that grows while it is read is
    /// read to its end and refused as `tooLarge` if it grew past the limit; one that shrinks yields the bytes it still
    /// has (and `empty` if none).
    ///
    /// For passing the original media through untouched; nothing here looks at the content.
    public static func readAll(_ input: MediaInput, limits: MediaLimits) throws(MediaError) -> [UInt8] {
        switch input {
        case .bytes(let bytes):
            try checkInputSize(bytes.count, limits: limits, label: "input")
            return bytes
        case .file(let path):
            let file = try MediaFile.open(path, limits: limits)
            return try read(file, path: path, limits: limits)
        }
    }

    /// Refuses empty input and input over `max_input_mb`, as every transform does; for callers that keep media bytes
    /// as they are without reading them through `readAll`.
    public static func checkInputSize(_ count: Int, limits: MediaLimits, label: String) throws(MediaError) {
        if count == 0 { throw MediaError(.empty, "\(label) is empty (0 bytes)") }
        if count > limits.maxInputBytes {
            throw MediaError(.tooLarge, "\(label) is \(count) bytes, over the limit of \(limits.maxInputBytes)")
        }
    }

    private static func read(_ file: borrowing MediaFile, path: String, limits: MediaLimits) throws(MediaError) -> [UInt8] {
        // One byte more than fstat said, to notice a file that grew since.
        var bytes = [UInt8](repeating: 0, count: Int(file.size) + 1)
        var done = 0
        while true {
            let got = bytes.withUnsafeMutableBytes { buffer in
                preadFully(file.descriptor, UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), Int64(done))
            }
            if got < 0 { throw MediaError(.fileNotFound, "cannot read \(path): \(errnoText())") }
            done += got
            if done < bytes.count { break }  // the end of the file
            if done > limits.maxInputBytes {
                throw MediaError(.tooLarge, "\(path) grew past the limit of \(limits.maxInputBytes) bytes while it was read")
            }
            bytes.append(contentsOf: repeatElement(0, count: min(bytes.count, limits.maxInputBytes + 1 - done)))
        }
        bytes.removeSubrange(done...)
        try checkInputSize(done, limits: limits, label: path)
        return bytes
    }
}
