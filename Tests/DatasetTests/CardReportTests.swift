import Dataset
import Foundation
import MDS
import Testing

/// The pure parts of `etl report`: what the bounded sampler keeps, the quarantine examples, and the page made of them.
/// The command is tested end to end, in a real browser, in Tests/EtlTests/ReportTests.swift.
@Suite struct CardReportTests {
    static func sample(_ key: Int, label: String, rating: Int, frame: UInt8? = nil) -> [String: MDSValue] {
        var sample: [String: MDSValue] = ["__key__": .string(String(key)), "label": .string(label), "rating": .int(Int64(rating)),
                                          "id_like": .int(Int64(key)), "score": .float(Double(key) / 3)]
        if let frame {
            // (T, H, W, C) = (2, 2, 3, 3): the first frame is all `frame`, the second all 0.
            sample["frames"] = .ndarray(NDArray(uint8: [UInt8](repeating: frame, count: 18) + [UInt8](repeating: 0, count: 18), shape: [2, 2, 3, 3]))
        }
        return sample
    }

    @Test func labelColumnsAreFewValuedIntsAndStrings() {
        var limits = ReportSampler.Limits()
        limits.maxDistinct = 5
        var sampler = ReportSampler(limits: limits)
        for key in 1...30 { sampler.add(split: "train", sample: Self.sample(key, label: ["good", "bad", "meh"][key % 3], rating: key % 5 + 1), columns: []) }
        #expect(sampler.labelColumns == ["label", "rating"], "id_like has 30 values, score is a float")
        let label = sampler.histograms.first { $0.column == "label" }!
        #expect(label.bins.map(\.value) == ["bad", "good", "meh"] && label.bins.map(\.count) == [10, 10, 10] && label.total == 30)
        #expect(sampler.samplesRead == 30 && !sampler.truncated)
    }

    @Test func stopsAtTheBoundAndSaysSo() {
        var limits = ReportSampler.Limits()
        limits.maxSamples = 10
        var sampler = ReportSampler(limits: limits)
        var accepted = 0
        for key in 1...25 where sampler.add(split: "train", sample: Self.sample(key, label: "a", rating: 1), columns: []) { accepted += 1 }
        #expect(sampler.samplesRead == 10 && sampler.truncated)
        let page = VersionReport(manifest: CardTests.manifest(), sampler: sampler, quarantine: QuarantineExamples(), sampleRate: 16000).html()
        #expect(page.contains("drawn from the first 10 samples (of 128; at most 10 are read)"))
    }

    @Test func framesBecomeTheirFirstFrameAsPNG() throws {
        var limits = ReportSampler.Limits()
        limits.thumbnails = 2
        var sampler = ReportSampler(limits: limits)
        for key in 1...3 { sampler.add(split: "val", sample: Self.sample(key, label: "x", rating: 1, frame: UInt8(key * 50)), columns: ["frames"]) }
        #expect(sampler.thumbnails.map(\.key) == ["1", "2"], "at most `thumbnails`")
        let first = sampler.thumbnails[0]
        #expect(first.mimeType == "image/png" && first.column == "frames" && first.labels["label"] == "x")
        #expect(first.bytes == SampleFiles.png(width: 3, height: 2, channels: 3, pixels: [UInt8](repeating: 50, count: 18)[...]))
    }

    @Test func jpegAndPngBytesAreShownAsTheyAreOtherBytesAreNot() {
        var sampler = ReportSampler()
        let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3], png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 9, 9]
        sampler.add(split: "train", sample: ["__key__": .string("a"), "blob": .bytes([1, 2, 3]), "thumb": .bytes(jpeg)], columns: ["blob", "thumb"])
        sampler.add(split: "train", sample: ["__key__": .string("b"), "image": .bytes(png)], columns: ["image"])
        sampler.add(split: "train", sample: ["__key__": .string("c"), "blob": .bytes([1, 2, 3])], columns: ["blob"])
        #expect(sampler.thumbnails.map { "\($0.key) \($0.column) \($0.mimeType)" } == ["a thumb image/jpeg", "b image image/png"])
        #expect(sampler.thumbnails.map(\.bytes) == [jpeg, png])
    }

    @Test func largeFramesAreShrunk() {
        var sampler = ReportSampler()
        let big = NDArray(uint8: [UInt8](repeating: 7, count: 640 * 320 * 3), shape: [1, 320, 640, 3])
        sampler.add(split: "train", sample: ["__key__": .string("k"), "f": .ndarray(big)], columns: ["f"])
        #expect(sampler.thumbnails[0].bytes == SampleFiles.png(width: 160, height: 80, channels: 3, pixels: [UInt8](repeating: 7, count: 160 * 80 * 3)[...]))
    }

    @Test func audioIsCutToTheFirstSecondsAtTheGivenRate() throws {
        var sampler = ReportSampler()
        let pcm = NDArray(int16: [Int16](repeating: 1000, count: 8000 * 10), shape: [8000 * 10, 1])  // 10 s at 8 kHz
        sampler.add(split: "train", sample: ["__key__": .string("a"), "audio": .ndarray(pcm)], columns: ["audio"])
        let page = VersionReport(manifest: CardTests.manifest(), sampler: sampler, quarantine: QuarantineExamples(), sampleRate: 8000).html()
        let wav = SampleFiles.wav(Array(pcm.data.prefix(8000 * 5 * 2)), channels: 1, sampleRate: 8000, float: false)
        #expect(page.contains("<audio controls src=\"data:audio/wav;base64,\(Data(wav).base64EncodedString())\">"))
        #expect(page.contains("Audio (first 5 s, played at 8000 Hz)"))
    }

    @Test func quarantineKeepsAFewExamplesPerReason() {
        var examples = QuarantineExamples(perReason: 2)
        for key in 1...5 { examples.add(line: #"{"key":"\#(key)","reason":"null_value","message":"label is NULL","column":"label"}"#) }
        examples.add(line: #"{"key":"9","reason":"media_corrupt","message":"bad <frame>"}"#)
        examples.add(line: "not json")
        #expect(examples.byReason["null_value"]?.map(\.key) == ["1", "2"])
        #expect(examples.byReason["media_corrupt"] == [.init(key: "9", message: "bad <frame>", column: nil)])
        #expect(examples.unreadable == 1)
        let page = VersionReport(manifest: CardTests.manifest(), sampler: ReportSampler(), quarantine: examples, sampleRate: 16000).html()
        #expect(page.contains("<td>media_corrupt</td><td class=\"n\">1</td><td>key 9: bad &lt;frame&gt;</td>"), "escaped:\n\(page)")
        #expect(page.contains("<td>key 1 (label): label is NULL\nkey 2 (label): label is NULL</td>"))
        #expect(page.contains("1 line of quarantine.jsonl could not be read."))
    }

    @Test func pageIsSelfContainedAndEscapesSourceValues() {
        var sampler = ReportSampler()
        sampler.add(split: "train", sample: Self.sample(1, label: "<script>alert(1)</script>", rating: 2, frame: 9), columns: ["frames"])
        let page = VersionReport(manifest: CardTests.manifest(), sampler: sampler, quarantine: QuarantineExamples(), sampleRate: 16000).html()
        #expect(!page.contains("<script"), "a label is data, never markup")
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        // Nothing is fetched: no src/href other than data: URIs, no url() in the style.
        #expect(page.ranges(of: /(src|href)="(?!data:)/).isEmpty && !page.contains("url("))
        #expect(page.contains("<img src=\"data:image/png;base64,"))
        #expect(page.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(page.contains("<td>train</td><td class=\"n\">80</td><td class=\"n\">20</td><td class=\"n\">100</td>"), "parent's, added, now")
        #expect(page.contains(htmlText(DatasetCard.render(CardTests.manifest()))), "the card is on the page")
    }

    private func htmlText(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }
}
