import Foundation
import MDS

/// The data behind `etl report`: what a bounded look at a version's samples found, and the page made of it.
/// Pure: `ReportSampler` takes samples one at a time (the command reads the shards), `QuarantineExamples` takes
/// quarantine.jsonl lines, and `html` turns the result into one self-contained page (inline CSS and SVG, media as
/// data URIs: it can be mailed or attached to a ticket and still show everything).
public struct VersionReport: Sendable {
    public var manifest: DatasetManifest
    public var sampler: ReportSampler
    public var quarantine: QuarantineExamples
    /// Sample rate written into the WAV players (MDS does not record it).
    public var sampleRate: Int

    public init(manifest: DatasetManifest, sampler: ReportSampler, quarantine: QuarantineExamples, sampleRate: Int) {
        self.manifest = manifest
        self.sampler = sampler
        self.quarantine = quarantine
        self.sampleRate = sampleRate
    }

    /// The frame around each thumbnail: a colour no thumbnail is likely to hold (not a primary: test patterns have
    /// magenta bars), so a screenshot test can find the frames and tell a drawn image from an empty box.
    public static let contactSheetColor = (red: 32, green: 200, blue: 160)

    public func html() -> String {
        let m = manifest
        var body: [String] = []
        body.append("<h1>\(htmlEscape(m.dataset)) \(htmlEscape(m.version))</h1>")
        body.append("<p>Created \(htmlEscape(m.createdAt)) by etl \(htmlEscape(m.toolVersion)) from pipeline <code>\(htmlEscape(m.pipeline.name))</code>; "
                    + "parent: \(m.parent.map { "<code>\(htmlEscape($0))</code>" } ?? "none (first version)").</p>")

        body.append("<h2>Against the parent</h2>")
        var rows: [[String]] = []
        for (name, split) in m.splits.sorted(by: { $0.key < $1.key }) {
            rows.append([name, m.parent == nil ? "—" : String(split.samples - split.newSamples), String(split.newSamples), String(split.samples)])
        }
        rows.append(["total", m.parent == nil ? "—" : String(m.counts.samples - m.counts.newSamples), String(m.counts.newSamples), String(m.counts.samples)])
        body.append(table(["split", m.parent.map { "kept from \($0)" } ?? "parent (none)", "added by this run", "in \(m.version)"], rows, numeric: [1, 2, 3]))
        body.append("<p class=\"note\">Added = samples this run wrote (manifest <code>new_samples</code>); the parent column is what the "
                    + "version kept from its parent\(m.redactions.isEmpty ? "" : ", after the redactions below").</p>")

        let s = sampler
        let bound = s.truncated
            ? "the first \(s.samplesRead) samples (of \(m.counts.samples); at most \(s.limits.maxSamples) are read), split by split in name order"
            : "all \(s.samplesRead) samples"
        body.append("<h2>Samples</h2>")
        body.append("<p>Histograms and thumbnails below are drawn from \(bound).</p>")

        let labels = s.labelColumns
        if s.thumbnails.isEmpty {
            body.append("<p>No image or video-frame columns.</p>")
        } else {
            body.append("<h3>Contact sheet (\(s.thumbnails.count) samples)</h3>")
            body.append("<div id=\"contact-sheet\">")
            for thumb in s.thumbnails {
                let caption = ([("split", thumb.split), ("key", thumb.key), ("column", thumb.column)]
                               + labels.compactMap { name in thumb.labels[name].map { (name, $0) } })
                    .map { "\(htmlEscape($0.0))=\(htmlEscape($0.1))" }.joined(separator: "<br>")
                body.append("<figure><div class=\"frame\"><img src=\"data:\(thumb.mimeType);base64,\(Self.base64(thumb.bytes))\" "
                            + "alt=\"\(htmlEscape(thumb.key))\"></div><figcaption>\(caption)</figcaption></figure>")
            }
            body.append("</div>")
        }

        body.append("<h3>Label-like columns</h3>")
        if s.histograms.isEmpty {
            body.append("<p>None: no int or str column has at most \(s.limits.maxDistinct) distinct values.</p>")
        }
        for histogram in s.histograms { body.append(Self.svgHistogram(histogram)) }

        if !s.audio.isEmpty {
            body.append("<h3>Audio (first \(s.limits.audioSeconds) s, played at \(sampleRate) Hz)</h3>")
            for clip in s.audio {
                let frameBytes = clip.channels * (clip.float ? 4 : 2)
                let wav = SampleFiles.wav(Array(clip.pcm.prefix(sampleRate * s.limits.audioSeconds * frameBytes)), channels: clip.channels, sampleRate: sampleRate, float: clip.float)
                body.append("<figure class=\"audio\"><audio controls src=\"data:audio/wav;base64,\(Self.base64(wav))\"></audio>"
                            + "<figcaption>\(htmlEscape(clip.split)) key=\(htmlEscape(clip.key)) \(htmlEscape(clip.column))</figcaption></figure>")
            }
        }

        body.append("<h2>Quarantine</h2>")
        if m.quarantine.count == 0 {
            body.append("<p>This run quarantined no rows.</p>")
        } else {
            var rows: [[String]] = []
            let reasons = m.quarantine.byReason.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            for (reason, count) in reasons {
                let examples = quarantine.byReason[reason] ?? []
                let text = examples.map { "key \($0.key)\($0.column.map { " (\($0))" } ?? ""): \($0.message)" }
                rows.append([reason, String(count), text.joined(separator: "\n")])
            }
            body.append(table(["reason", "rows", "examples (at most \(quarantine.perReason) each)"], rows, numeric: [1]))
            if quarantine.unreadable > 0 {
                body.append("<p>\(quarantine.unreadable) line\(quarantine.unreadable == 1 ? "" : "s") of quarantine.jsonl could not be read.</p>")
            }
        }

        body.append("<h2>Card</h2>")
        body.append("<pre class=\"card\">\(htmlEscape(DatasetCard.render(m)))</pre>")

        let c = Self.contactSheetColor
        let style = """
            body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
            table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top;white-space:pre-wrap}
            td.n{text-align:right}.note{color:#666}
            #contact-sheet{display:flex;flex-wrap:wrap;gap:12px;padding:12px;background:#fff}
            #contact-sheet figure{margin:0;width:172px}
            #contact-sheet .frame{background:rgb(\(c.red),\(c.green),\(c.blue));padding:6px;width:160px;height:120px}
            #contact-sheet img{display:block;width:160px;height:120px;object-fit:contain;image-rendering:pixelated}
            figcaption{font-size:11px;color:#444;word-break:break-all}
            pre.card{background:#f6f6f6;padding:12px;white-space:pre-wrap}
            """
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(htmlEscape(m.dataset)) \(htmlEscape(m.version)) report</title>
            <style>\(style)</style></head>
            <body>
            \(body.joined(separator: "\n"))
            </body></html>

            """
    }

    /// One horizontal bar per value, most frequent first, in an inline SVG.
    static func svgHistogram(_ histogram: ReportSampler.Histogram) -> String {
        let rowHeight = 20, labelWidth = 160, barWidth = 400
        let maxCount = histogram.bins.map(\.count).max() ?? 1
        var svg = "<figure class=\"histogram\"><figcaption><code>\(htmlEscape(histogram.column))</code>: \(histogram.bins.count) value"
            + "\(histogram.bins.count == 1 ? "" : "s") over \(histogram.total) samples</figcaption>"
        svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(labelWidth + barWidth + 60)\" height=\(q(rowHeight * histogram.bins.count))>"
        for (row, bin) in histogram.bins.enumerated() {
            let y = row * rowHeight
            let width = max(1, bin.count * barWidth / max(1, maxCount))
            svg += "<text x=\(q(labelWidth - 6)) y=\(q(y + 14)) text-anchor=\"end\" font-size=\"12\">\(htmlEscape(String(bin.value.prefix(24))))</text>"
            svg += "<rect x=\(q(labelWidth)) y=\(q(y + 3)) width=\(q(width)) height=\(q(rowHeight - 6)) fill=\"#4a7bd0\"/>"
            svg += "<text x=\(q(labelWidth + width + 4)) y=\(q(y + 14)) font-size=\"12\">\(bin.count)</text>"
        }
        return svg + "</svg></figure>"
    }

    private static func q(_ value: Int) -> String { "\"\(value)\"" }

    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    private func table(_ header: [String], _ rows: [[String]], numeric: Set<Int> = []) -> String {
        var html = "<table><tr>" + header.map { "<th>\(htmlEscape($0))</th>" }.joined() + "</tr>"
        for row in rows {
            html += "<tr>" + row.enumerated().map { numeric.contains($0.offset) ? "<td class=\"n\">\(htmlEscape($0.element))</td>" : "<td>\(htmlEscape($0.element))</td>" }.joined() + "</tr>"
        }
        return html + "</table>"
    }
}

/// Text as HTML: every value on the page comes from the source database and may hold markup.
func htmlEscape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(character)
        }
    }
    return out
}

/// What a bounded pass over a version's samples keeps for the report: value counts of label-like columns, the
/// first thumbnails and audio clips. Memory stays bounded whatever the version's size.
public struct ReportSampler: Sendable {
    public struct Limits: Sendable {
        public var maxSamples = 20_000
        /// A plain column with more distinct values than this is not label-like (ids, scores, free text).
        public var maxDistinct = 20
        public var thumbnails = 24
        /// Longest side of a frame thumbnail; larger frames are shrunk (nearest neighbour) to keep the page small.
        public var thumbnailSide = 160
        public var audioClips = 4
        public var audioSeconds = 5
        public init() {}
    }

    public struct Thumbnail: Sendable, Equatable {
        public var split: String
        public var key: String
        public var column: String
        public var mimeType: String
        public var bytes: [UInt8]
        /// Every short plain value of the sample; the page shows those of label-like columns.
        public var labels: [String: String]
    }

    public struct AudioClip: Sendable, Equatable {
        public var split: String
        public var key: String
        public var column: String
        public var pcm: [UInt8]
        public var channels: Int
        public var float: Bool
    }

    public struct Histogram: Sendable, Equatable {
        public var column: String
        public var bins: [(value: String, count: Int)]
        public var total: Int
        public static func == (a: Histogram, b: Histogram) -> Bool {
            a.column == b.column && a.total == b.total && a.bins.map(\.value) == b.bins.map(\.value) && a.bins.map(\.count) == b.bins.map(\.count)
        }
    }

    public let limits: Limits
    public private(set) var samplesRead = 0
    /// Stopped at `limits.maxSamples` with samples left unread.
    public private(set) var truncated = false
    public private(set) var thumbnails: [Thumbnail] = []
    public private(set) var audio: [AudioClip] = []
    /// Counts per plain column; a column leaves when it passes `maxDistinct` values (and stays out).
    private var counts: [String: [String: Int]] = [:]
    private var notLabels: Set<String> = []

    public init(limits: Limits = Limits()) { self.limits = limits }

    public var isFull: Bool { samplesRead >= limits.maxSamples }

    /// Takes one sample; `columns` is the manifest's column order, so the first image column of a sample is chosen
    /// the same way every time. Returns false once the bound is reached (the caller stops reading and should call
    /// `markTruncated` if samples were left).
    @discardableResult
    public mutating func add(split: String, sample: [String: MDSValue], columns: [String]) -> Bool {
        guard !isFull else {
            truncated = true
            return false
        }
        samplesRead += 1
        let key = sample[SampleKey.column].map(SampleFiles.plainText) ?? "?"
        var plain: [String: String] = [:]
        for (column, value) in sample where column != SampleKey.column && !notLabels.contains(column) {
            let text: String
            switch value {
            case .string(let string): text = string
            case .int(let number): text = String(number)
            case .uint(let number): text = String(number)
            default:
                notLabels.insert(column)
                counts[column] = nil
                continue
            }
            plain[column] = text
            counts[column, default: [:]][text, default: 0] += 1
            if counts[column]!.count > limits.maxDistinct {
                notLabels.insert(column)
                counts[column] = nil
            }
        }
        let ordered = columns + sample.keys.sorted().filter { !columns.contains($0) }
        if thumbnails.count < limits.thumbnails {
            for column in ordered {
                guard let value = sample[column], let image = thumbnail(value) else { continue }
                var labels: [String: String] = [:]
                for (name, value) in sample where name != SampleKey.column {
                    if case .string(let text) = value, text.count <= 40 { labels[name] = text }
                    if case .int(let number) = value { labels[name] = String(number) }
                    if case .uint(let number) = value { labels[name] = String(number) }
                }
                thumbnails.append(Thumbnail(split: split, key: key, column: column, mimeType: image.mime, bytes: image.bytes, labels: labels))
                break
            }
        }
        if audio.count < limits.audioClips {
            for column in ordered {
                guard case .ndarray(let array)? = sample[column], array.dtype == .int16 || array.dtype == .float32,
                      (1...2).contains(array.shape.count), array.shape.allSatisfy({ $0 > 0 }) else { continue }
                let channels = array.shape.count == 2 ? array.shape[1] : 1
                let frameBytes = channels * (array.dtype == .float32 ? 4 : 2)
                // Without the real rate the cut is at `audioSeconds` of 48 kHz at most: never shorter than asked.
                let keep = min(array.data.count, limits.audioSeconds * 48_000 * frameBytes)
                audio.append(AudioClip(split: split, key: key, column: column, pcm: Array(array.data.prefix(keep - keep % frameBytes)),
                                       channels: channels, float: array.dtype == .float32))
                break
            }
        }
        return !isFull
    }

    /// Call when reading stopped at the bound with samples left unread.
    public mutating func markTruncated() { truncated = true }

    /// Plain int/str columns with few distinct values, by name.
    public var labelColumns: [String] { counts.keys.sorted() }

    public var histograms: [Histogram] {
        labelColumns.map { column in
            let bins = counts[column]!.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { (value: $0.key, count: $0.value) }
            return Histogram(column: column, bins: bins, total: bins.reduce(0) { $0 + $1.count })
        }
    }

    /// jpeg/png bytes as they are; a uint8 (T,H,W,C) or (H,W,C) array as its first frame in PNG.
    func thumbnail(_ value: MDSValue) -> (mime: String, bytes: [UInt8])? {
        switch value {
        case .bytes(let bytes):
            if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return ("image/jpeg", bytes) }
            if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return ("image/png", bytes) }
            return nil
        case .ndarray(let array):
            guard array.dtype == .uint8, let (_, height, width, channels) = SampleFiles.imageFrames(array.shape) else { return nil }
            let frame = array.data[0..<height * width * channels]
            let (w, h, pixels) = Self.shrink(frame, width: width, height: height, channels: channels, side: limits.thumbnailSide)
            return ("image/png", SampleFiles.png(width: w, height: h, channels: channels, pixels: pixels[...]))
        default:
            return nil
        }
    }

    /// Nearest-neighbour downscale so the longest side is at most `side` (the PNG writer stores, not compresses).
    static func shrink(_ pixels: ArraySlice<UInt8>, width: Int, height: Int, channels: Int, side: Int) -> (Int, Int, [UInt8]) {
        let longest = max(width, height)
        guard longest > side else { return (width, height, Array(pixels)) }
        let w = max(1, width * side / longest), h = max(1, height * side / longest)
        var out = [UInt8](repeating: 0, count: w * h * channels)
        for y in 0..<h {
            let sy = y * height / h
            for x in 0..<w {
                let sx = x * width / w
                let from = pixels.startIndex + (sy * width + sx) * channels, to = (y * w + x) * channels
                for c in 0..<channels { out[to + c] = pixels[from + c] }
            }
        }
        return (w, h, out)
    }
}

/// A few quarantine.jsonl lines per reason, to show what the reasons mean for this version's data.
public struct QuarantineExamples: Sendable {
    public struct Example: Sendable, Equatable {
        public var key: String
        public var message: String
        public var column: String?
        public init(key: String, message: String, column: String?) {
            self.key = key
            self.message = message
            self.column = column
        }
    }

    public let perReason: Int
    public private(set) var byReason: [String: [Example]] = [:]
    /// Lines that were not a JSON object with a reason (shown as a count, never silently dropped).
    public private(set) var unreadable = 0

    public init(perReason: Int = 3) { self.perReason = perReason }

    public mutating func add(line: some StringProtocol) {
        guard !line.isEmpty else { return }
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let reason = object["reason"] as? String else {
            unreadable += 1
            return
        }
        guard byReason[reason, default: []].count < perReason else { return }
        let key = (object["key"] as? String) ?? (object["key"].map { "\($0)" } ?? "?")
        byReason[reason, default: []].append(Example(key: key, message: (object["message"] as? String) ?? "", column: object["column"] as? String))
    }
}
