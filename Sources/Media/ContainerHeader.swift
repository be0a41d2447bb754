/// A walk over the top-level structure of MP4/MOV and Matroska/WebM before FFmpeg opens them, to tell a cut file from
/// a damaged one. Both formats declare the size of their top-level elements, so a file that ends before them was cut
/// short: an MP4 whose `mdat` runs past the end (the usual way an upload is interrupted, losing the `moov` written
/// after it), or a Matroska segment with fewer bytes than its header declares. FFmpeg itself clamps those sizes to the
/// file and reports "moov atom not found" or simply stops early, which reads as corruption or as a shorter clip.
///
/// A declared size past the end only means "cut short" when the structure up to it is sound: the boxes before it
/// parsed and the box itself has a real box type. Random bytes behind a valid `ftyp` also "declare" sizes (whatever
/// their first four bytes say), and calling that truncated would send someone looking for the rest of a file that
/// never existed; that is `corrupt`.
enum ContainerHeader {
    enum Verdict: Equatable {
        case truncated(String)
        case corrupt(String)
    }

    static func check(_ source: ByteSource, limits: MediaLimits) throws(MediaError) {
        switch verdict(source) {
        case nil:
            return
        case .truncated(let problem):
            if !limits.acceptTruncated { throw MediaError(.truncated, "\(source.label): \(problem)") }
        case .corrupt(let problem):
            throw MediaError(.corrupt, "\(source.label): \(problem)")
        }
    }

    static func verdict(_ source: ByteSource) -> Verdict? {
        let head = source.prefix(16)
        guard head.count >= 8 else { return nil }
        if isISOBMFF(head) { return isoVerdict(source) }
        if head.starts(with: [0x1A, 0x45, 0xDF, 0xA3]) { return matroskaTruncation(source).map(Verdict.truncated) }
        return nil
    }

    private static let isoTopLevel: Set<String> = ["ftyp", "moov", "mdat", "free", "skip", "wide", "pnot", "styp"]

    private static func isISOBMFF(_ head: [UInt8]) -> Bool {
        let box = String(decoding: head[4..<8], as: UTF8.self)
        return isoTopLevel.contains(box)
    }

    /// Box types that occur at the top level of ISO BMFF / QuickTime files (ISO/IEC 14496-12, 3GPP, QuickTime).
    private static let isoKnownTopLevel: Set<String> = isoTopLevel.union([
        "meta", "uuid", "moof", "mfra", "sidx", "ssix", "prft", "emsg", "pdin", "bloc", "junk", "PICT", "ftyp",
    ])

    /// A type that a real box could have: a known top-level type, or four characters from the alphabet box types are
    /// made of (lower-case letters, digits, space). Four random bytes pass the latter 1 time in 2000.
    private static func isPlausibleBoxType(_ bytes: Bytes, at index: Int) -> Bool {
        if isoKnownTopLevel.contains(bytes.tag(index)) { return true }
        return (index..<index + 4).allSatisfy { i in
            let c = bytes[i]
            return (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x20
        }
    }

    private static func isoVerdict(_ source: ByteSource) -> Verdict? {
        var offset: Int64 = 0
        var boxes = 0
        var seen: Set<String> = []
        while offset < source.size && boxes < 100_000 {
            let header = source.bytes(at: offset, count: 16)
            let complete = seen.contains("moov") && (seen.contains("mdat") || seen.contains("moof"))
            guard header.count >= 8 else {
                // A few stray bytes after a complete file are ignored, as players do.
                if complete { return nil }
                return .truncated("a box header at byte \(offset) is cut off (file has \(source.size) bytes)")
            }
            let bytes = header.withUnsafeBytes { Bytes($0) }
            var size = Int64(bytes.be32(0))
            let type = bytes.tag(4)
            guard isPlausibleBoxType(bytes, at: 4) else {
                if complete { return nil }
                let hex = header[4..<8].map { String($0, radix: 16) }.joined(separator: " ")
                return .corrupt("bytes \(offset)… are not an MP4 box (type bytes \(hex)) after \(boxes) valid boxes")
            }
            if size == 1 {
                guard header.count >= 16 else { return .truncated("box '\(type)' at byte \(offset) is cut off") }
                size = Int64(bytes.be32(8)) << 32 | Int64(bytes.be32(12))
            } else if size == 0 {
                return nil  // extends to the end of the file by definition
            }
            guard size >= 8 else {
                if complete { return nil }
                return .corrupt("box '\(type)' at byte \(offset) declares an impossible size of \(size) bytes")
            }
            if offset + size > source.size {
                return .truncated(
                    "box '\(type)' at byte \(offset) declares \(size) bytes but the file ends after \(source.size - offset)")
            }
            seen.insert(type)
            offset += size
            boxes += 1
        }
        return nil
    }

    private static func matroskaTruncation(_ source: ByteSource) -> String? {
        let head = source.prefix(64)
        let bytes = head.withUnsafeBytes { Bytes($0) }
        // EBML header: ID (4 bytes), size (vint), payload; then the Segment: ID 18 53 80 67, size (vint).
        guard let (headerSize, headerLength) = vint(bytes, at: 4) else { return nil }
        let segment = 4 + headerLength + Int(headerSize)
        guard segment + 4 < head.count, Array(head[segment..<segment + 4]) == [0x18, 0x53, 0x80, 0x67],
            let (segmentSize, sizeLength) = vint(bytes, at: segment + 4)
        else { return nil }
        // An all-ones size means "unknown" (live recordings); nothing to compare against.
        if segmentSize == (UInt64(1) << (7 * UInt64(sizeLength))) - 1 { return nil }
        let end = Int64(segment + 4 + sizeLength) + Int64(clamping: segmentSize)
        if end > source.size {
            return "the Matroska segment declares \(end) bytes but the file has \(source.size)"
        }
        return nil
    }

    /// An EBML variable-length integer: its value with the length marker removed, and its length in bytes.
    private static func vint(_ bytes: Bytes, at index: Int) -> (UInt64, Int)? {
        let first = bytes[index]
        guard first != 0 else { return nil }
        let length = first.leadingZeroBitCount + 1
        guard index + length <= bytes.count else { return nil }
        var value = UInt64(first) & ((1 << UInt64(8 - length)) - 1)
        for i in 1..<length { value = value << 8 | UInt64(bytes[index + i]) }
        return (value, length)
    }
}
