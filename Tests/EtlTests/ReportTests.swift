import Dataset
import Foundation
import MDS
import Testing

/// The dataset card every `etl run` writes, and `etl report`'s page, end to end; the page also in a real browser.
@Suite("etl run writes the card; etl report")
struct ReportTests {
    @Test func everyVersionCarriesItsCard() throws {
        let ws = try Workspace("card")
        try seedFeedback(ws, count: 60)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        try seedFeedback(ws, from: 61, count: 15)
        #expect(try ws.etl("run", "fb").status == 0)

        for version in ["v1", "v2"] {
            let manifest = try ws.manifest("fb", version)
            let card = try String(contentsOf: ws.versionDirectory("fb", version).appendingPathComponent("README.md"), encoding: .utf8)
            #expect(card == DatasetCard.render(manifest), "the card is rendered from the manifest published with it")
            for (split, info) in manifest.splits {
                #expect(card.contains("| \(split) | \(info.samples) | \(info.newSamples) | \(info.shards.count) |"), "\(split) in:\n\(card)")
            }
            #expect(card.contains("| **total** | \(manifest.counts.samples) | \(manifest.counts.newSamples) |"))
        }
        let v2 = try ws.manifest("fb", "v2")
        #expect(v2.counts.samples == 75 && v2.counts.newSamples == 15)
        let card = try String(contentsOf: ws.versionDirectory("fb", "v2").appendingPathComponent("README.md"), encoding: .utf8)
        #expect(card.contains("- cursor: `id` (int8) in (60, 75]"), "\(card)")
        let verify = try ws.etl("verify", "fb")
        #expect(verify.status == 0, "README.md is part of a sound version: \(verify.output)")
    }

    @Test func reportDefaultsToTheWorkingDirectoryAndShowsLabels() throws {
        let ws = try Workspace("report")
        try seedFeedback(ws, count: 40)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        let result = try ws.etl("report", "fb@v1", "--max-samples", "25")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout == "wrote fb-v1-report.html\n")
        let page = try String(contentsOf: ws.directory.appendingPathComponent("fb-v1-report.html"), encoding: .utf8)
        #expect(page.contains("<code>label</code>: 3 values over 25 samples"), "label is label-like")
        #expect(page.contains("<code>rating</code>: 5 values over 25 samples"))
        #expect(!page.contains("<code>score</code>:"), "a float column is not label-like")
        #expect(page.contains("the first 25 samples (of 40; at most 25 are read)"))
        #expect(page.contains("This run quarantined no rows."))
        #expect(!FileManager.default.fileExists(atPath: ws.versionDirectory("fb", "v1").appendingPathComponent("report.html").path),
                "versions are immutable")
        #expect(try ws.etl("report", "fb@v9").status == 7)
    }

    @Test func afterForgetTheCardAndTheReportShowTheRedaction() throws {
        let ws = try Workspace("reportforget")
        try seedFeedback(ws, count: 30)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        let forget = try ws.etl("forget", "fb", "--key", "7", "--reason", "user request 42")
        #expect(forget.status == 0, "\(forget.output)")
        let card = try String(contentsOf: ws.versionDirectory("fb", "v1").appendingPathComponent("README.md"), encoding: .utf8)
        #expect(card.contains("again when `etl forget` removes samples from it; `manifest.json` stays the authoritative record"))
        #expect(card.contains("user request 42"), "the card is rendered again with the redaction")
        #expect(try ws.etl("report", "fb", "-o", "fb.html").status == 0)
        let page = try String(contentsOf: ws.directory.appendingPathComponent("fb.html"), encoding: .utf8)
        #expect(page.contains("| 1 | user request 42 | key |"), "the page renders the current manifest's card")
        #expect(page.contains("<td>total</td><td class=\"n\">—</td><td class=\"n\">29</td><td class=\"n\">29</td>"), "\(page.prefix(2000))")
        #expect(page.contains("drawn from all 29 samples"))
    }

    /// A still image or a clip per row, one corrupt upload; `frames` is (T, H, W, C) uint8, shown as its first frame.
    private func mediaDataset(_ ws: Workspace) throws {
        try ws.sql("CREATE TABLE $S.pics (id bigint PRIMARY KEY, label text, media bytea)")
        let clip = try TestMedia.clip(), png = try TestMedia.png()
        let rows: [(Int, String, [UInt8])] = [(1, "cat", clip), (2, "dog", png), (3, "cat", clip), (4, "dog", png), (5, "cat", clip),
                                              (6, "dog", (0..<2048).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) })]
        for (id, label, bytes) in rows {
            try ws.db.execute("INSERT INTO \(ws.schema).pics VALUES ($1, $2, $3)", [String(id), label, hexLiteral(bytes)])
        }
        try ws.writePipeline("pics", """
            name: pics
            source:
              query: SELECT id, label, media FROM $S.pics
              cursor_column: id
              key_column: id
            columns:
              - name: label
              - name: frames
                from: media
                video_frames: {fps: 1, width: 64, height: 48, resize: pad, max_frames: 2}
            split: {ratios: {train: 1}}
            """)
        let run = try ws.etl("run", "pics")
        #expect(run.status == 0, "\(run.output)")
    }

    @Test func reportInlinesFramesAndQuarantineExamples() throws {
        let ws = try Workspace("reportmedia")
        try mediaDataset(ws)
        let result = try ws.etl("report", "pics", "-o", "out/pics.html")
        #expect(result.status == 5 && result.stderr.contains("cannot write out/pics.html"), "no such directory: \(result.output)")
        try FileManager.default.createDirectory(at: ws.directory.appendingPathComponent("out"), withIntermediateDirectories: true)
        #expect(try ws.etl("report", "pics", "-o", "out/pics.html").status == 0)
        let page = try String(contentsOf: ws.directory.appendingPathComponent("out/pics.html"), encoding: .utf8)
        #expect(page.components(separatedBy: "<img src=\"data:image/png;base64,").count - 1 == 5)
        #expect(page.contains("Contact sheet (5 samples)"))
        #expect(page.contains("<td>media_unsupported_format</td><td class=\"n\">1</td><td>key 6 (frames): "), "\(page.suffix(3000))")
    }

    /// Where chromium is, if it is installed: scripts/test does not install it (it is large), so the browser test
    /// runs only where someone did (`apt-get install chromium`).
    static let chromium: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in ["chromium", "chromium-browser"] {
            for directory in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
                return "\(directory)/\(name)"
            }
        }
        return nil
    }()

    // Runs only when chromium (or chromium-browser) is on PATH; scripts/test does not install it.
    @Test(.enabled(if: ReportTests.chromium != nil, "needs chromium or chromium-browser on PATH"))
    func contactSheetIsDrawnInARealBrowser() throws {
        let ws = try Workspace("browser")
        try mediaDataset(ws)
        #expect(try ws.etl("report", "pics", "-o", "pics.html").status == 0)
        let page = ws.directory.appendingPathComponent("pics.html")
        let tiles = try ReportTests.thumbnailTiles(page, in: ws)
        #expect(tiles.count == 5, "5 samples, 5 frames; found \(tiles)")
        for tile in tiles {
            #expect(tile.region.frameColorFraction < 0.2, "the image covers its frame: \(tile)")
            #expect(tile.region.standardDeviation > 10, "and is not blank: \(tile)")
        }

        // The check can fail: the same page with every image's bytes broken shows 5 empty frames.
        let broken = ws.directory.appendingPathComponent("broken.html")
        try String(contentsOf: page, encoding: .utf8).replacing(/base64,[A-Za-z0-9+\/=]+/, with: "base64,AAAA")
            .write(to: broken, atomically: true, encoding: .utf8)
        let empty = try ReportTests.thumbnailTiles(broken, in: ws)
        #expect(empty.count == 5 && empty.allSatisfy { $0.region.frameColorFraction > 0.5 }, "\(empty)")
    }

    /// Screenshots `page` in headless chromium and finds the contact sheet's frames: each thumbnail sits in its own
    /// frame colour (VersionReport.contactSheetColor), so one component of that colour per thumbnail, and what is inside it.
    static func thumbnailTiles(_ page: URL, in ws: Workspace) throws -> [(box: Screenshot.Box, region: Screenshot.Region)] {
        let shot = ws.directory.appendingPathComponent(page.deletingPathExtension().lastPathComponent + ".png")
        let browser = try runProcess(chromium!, [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(ws.directory.path)/chromium-profile",
            "--screenshot=\(shot.path)", "--window-size=1200,2000", page.absoluteString,
        ])
        try #require(FileManager.default.fileExists(atPath: shot.path), "no screenshot: \(browser.output)")
        let png = Array(try Data(contentsOf: shot))
        let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }, height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
        let raw = shot.deletingPathExtension().appendingPathExtension("rgb")
        let convert = try runProcess("/usr/bin/ffmpeg", ["-v", "error", "-y", "-i", shot.path, "-f", "rawvideo", "-pix_fmt", "rgb24", raw.path])
        try #require(convert.status == 0, "\(convert.output)")
        let screen = Screenshot(width: width, height: height, rgb: Array(try Data(contentsOf: raw)))
        try #require(screen.rgb.count == width * height * 3, "\(width)x\(height), \(screen.rgb.count) bytes")
        return screen.frameColorComponents().filter { $0.width >= 100 && $0.height >= 80 }.map { ($0, screen.interior(of: $0, inset: 8)) }
    }
}

/// Just enough image analysis for the browser test: pixels of one colour grouped into 4-connected components.
struct Screenshot {
    var width: Int
    var height: Int
    var rgb: [UInt8]

    struct Box: CustomStringConvertible {
        var x0: Int, y0: Int, x1: Int, y1: Int
        var width: Int { x1 - x0 + 1 }
        var height: Int { y1 - y0 + 1 }
        var description: String { "\(width)x\(height)@\(x0),\(y0)" }
    }

    func isFrameColor(_ index: Int) -> Bool {
        let c = VersionReport.contactSheetColor
        return abs(Int(rgb[index * 3]) - c.red) <= 4 && abs(Int(rgb[index * 3 + 1]) - c.green) <= 4 && abs(Int(rgb[index * 3 + 2]) - c.blue) <= 4
    }

    func frameColorComponents() -> [Box] {
        var seen = [Bool](repeating: false, count: width * height)
        var boxes: [Box] = []
        for start in 0..<(width * height) where !seen[start] && isFrameColor(start) {
            var box = Box(x0: start % width, y0: start / width, x1: start % width, y1: start / width)
            var stack = [start]
            seen[start] = true
            while let index = stack.popLast() {
                let x = index % width, y = index / width
                box.x0 = min(box.x0, x); box.x1 = max(box.x1, x); box.y0 = min(box.y0, y); box.y1 = max(box.y1, y)
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)] where nx >= 0 && ny >= 0 && nx < width && ny < height {
                    let next = ny * width + nx
                    if !seen[next] && isFrameColor(next) {
                        seen[next] = true
                        stack.append(next)
                    }
                }
            }
            boxes.append(box)
        }
        return boxes
    }

    struct Region: CustomStringConvertible {
        var frameColorFraction: Double
        var standardDeviation: Double
        var description: String { "frame colour \(frameColorFraction), sd \(standardDeviation)" }
    }

    func interior(of box: Box, inset: Int) -> Region {
        var framed = 0, count = 0, sum = 0.0, squares = 0.0
        for y in (box.y0 + inset)...(box.y1 - inset) {
            for x in (box.x0 + inset)...(box.x1 - inset) {
                let index = y * width + x
                if isFrameColor(index) { framed += 1 }
                for c in 0..<3 {
                    let v = Double(rgb[index * 3 + c])
                    sum += v
                    squares += v * v
                }
                count += 1
            }
        }
        let n = Double(count * 3), mean = sum / n
        return Region(frameColorFraction: Double(framed) / Double(count), standardDeviation: (squares / n - mean * mean).squareRoot())
    }
}
