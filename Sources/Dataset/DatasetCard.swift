import Foundation

/// `README.md` of a dataset version: what a person opening the directory (or a training job's author) needs to know
/// without reading manifest.json. Pure: it renders only what the manifest records, so a card can be rebuilt from any
/// version at any time (`etl report` shows the current manifest's card, including later redactions).
///
/// The manifest does not keep the source query text (only the pipeline's path and a hash of its file), so neither
/// does the card: the hash names the exact pipeline file that produced the version.
public enum DatasetCard {
    public static let fileName = "README.md"

    /// The card. `remote` is where the Python snippet loads the version from; by default the version's path under
    /// the default output root (`datasets/`), relative to where etl ran — a path, not a URL, since the manifest does
    /// not know where the version will be served from.
    public static func render(_ manifest: DatasetManifest, remote: String? = nil) -> String {
        let m = manifest
        var lines: [String] = []
        lines.append("# \(m.dataset) \(m.version)")
        lines.append("")
        // etl forget rewrites manifest.json (counts, redactions) and renders this file again from it.
        lines.append("An immutable version of the `\(m.dataset)` dataset: mosaicml-streaming MDS shards, one directory per split, "
                     + "published by etl. This card is rendered from `manifest.json` when the version is published and again when "
                     + "`etl forget` removes samples from it; `manifest.json` stays the authoritative record (`etl report` renders the card afresh).")
        lines.append("")
        lines += table(["", ""], [
            ["dataset", code(m.dataset)],
            ["version", code(m.version)],
            ["parent", m.parent.map(code) ?? "none (first version)"],
            ["created", m.createdAt],
            ["run id", code(m.runId)],
            ["tool", "etl \(m.toolVersion)"],
        ])
        lines.append("")
        lines.append("## Source")
        lines.append("")
        lines.append("- pipeline: \(code(m.pipeline.name)) from \(code(m.pipeline.path)), sha256 \(code(m.pipeline.configSha256))")
        lines.append("- cursor: \(code(m.cursor.column)) (\(m.cursor.type)) in \(cursorRange(m.cursor))")
        if let revisit = m.cursor.revisitFrom {
            lines.append("- also re-read (\(revisit), \(m.cursor.from ?? "")] for rows committed late, that no earlier version had published")
        }
        lines.append("- this run read \(m.counts.rowsRead) source row\(plural(m.counts.rowsRead)) in \(seconds(m.stats.durationSeconds)) "
                     + "and wrote \(m.stats.bytesWritten) bytes of shards")
        if let replaced = m.counts.replaced, replaced > 0 {
            lines.append("- \(replaced) sample\(plural(replaced)) of earlier versions replaced by their changed source row (`source.change_column`)")
        }
        if let deduplicated = m.counts.deduplicated, deduplicated > 0 {
            lines.append("- \(deduplicated) row\(plural(deduplicated)) not written: their `dedupe` value was already published")
        }
        lines.append("")
        lines.append("## Samples")
        lines.append("")
        var splitRows: [[String]] = []
        for (name, split) in m.splits.sorted(by: { $0.key < $1.key }) {
            splitRows.append([name, String(split.samples), String(split.newSamples), String(split.shards.count)])
        }
        let shardTotal = m.splits.values.reduce(0) { $0 + $1.shards.count }
        splitRows.append(["**total**", String(m.counts.samples), String(m.counts.newSamples), String(shardTotal)])
        lines += table(["split", "samples", "new in this version", "shards"], splitRows, rightAligned: [1, 2, 3])
        lines.append("")
        lines.append("## Columns")
        lines.append("")
        lines += table(["column", "encoding", "source", "transform"],
                       m.columns.map { [code($0.name), code($0.encoding), code($0.source), $0.transform] })
        lines.append("")
        lines.append("## Quarantine")
        lines.append("")
        if m.quarantine.count == 0 {
            lines.append("This run quarantined no rows.")
        } else {
            let file = m.quarantine.file.map { " (`\($0)`: key, reason, message, column)" } ?? ""
            lines.append("This run quarantined \(m.quarantine.count) row\(plural(m.quarantine.count))\(file); earlier runs' rows stay in their own versions.")
            lines.append("")
            // Most frequent first, then by name, so the card reads the same on every render.
            let reasons = m.quarantine.byReason.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            lines += table(["reason", "rows"], reasons.map { [code($0.key), String($0.value)] }, rightAligned: [1])
        }
        lines.append("")
        lines.append("## Redactions")
        lines.append("")
        if m.redactions.isEmpty {
            lines.append("None recorded in the manifest this card was rendered from.")
        } else {
            lines += table(["at", "samples removed", "reason", "method", "shards rewritten"], m.redactions.map {
                [$0.at, String($0.keys), $0.reason, $0.method ?? "", $0.shardsRewritten.map(String.init) ?? ""]
            }, rightAligned: [1, 4])
        }
        lines.append("")
        lines.append("## Loading")
        lines.append("")
        let split = m.splits["train"] != nil ? "train" : (m.splits.keys.sorted().first ?? "train")
        lines.append("With `pip install mosaicml-streaming`:")
        lines.append("")
        lines.append("```python")
        lines.append("from streaming import StreamingDataset")
        lines.append("")
        lines.append("dataset = StreamingDataset(remote=\"\(remote ?? "datasets/\(m.dataset)/\(m.version)")\", local=\"/tmp/mds-cache/\(m.dataset)-\(m.version)\", split=\"\(split)\", shuffle=False)")
        lines.append("print(len(dataset))")
        lines.append("print(dataset[0][\"\(SampleKey.column)\"])")
        lines.append("```")
        return lines.joined(separator: "\n") + "\n"
    }

    /// `(from, to]`, as the manifest means it; `(−∞, to]` for a first version.
    static func cursorRange(_ cursor: DatasetManifest.CursorRange) -> String {
        "(\(cursor.from ?? "−∞"), \(cursor.to ?? "−∞")]"
    }

    static func seconds(_ value: Double) -> String {
        let tenths = (value * 10).rounded() / 10
        return "\(tenths) s"
    }

    static func plural(_ count: Int) -> String { count == 1 ? "" : "s" }

    /// Inline code; a backtick inside (a column named with one) would end it, so such names are shown plain.
    static func code(_ text: String) -> String { text.contains("`") ? text : "`\(text)`" }

    /// A GitHub-flavoured Markdown table; `|` in cells is escaped so a value cannot add a column.
    static func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> [String] {
        func row(_ cells: [String]) -> String {
            "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |"
        }
        let rule = "|" + header.indices.map { rightAligned.contains($0) ? "---:" : "---" }.joined(separator: "|") + "|"
        return [row(header), rule] + rows.map(row)
    }
}
