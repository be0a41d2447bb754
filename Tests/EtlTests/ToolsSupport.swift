import Foundation
import MDS
import Testing

/// Whole-output comparisons (as swift-argument-parser's AssertExecuteCommand does) mask only what truly varies
/// between runs, keeping every character's column so table alignment is still compared:
/// - ISO 8601 timestamps (`created_at`, redaction times) → `YYYY-MM-DDTHH:MM:SS.sssZ` (same length as the real one);
/// - lowercase hex runs of 12 or more digits (sha256 prefixes, content-addressed shard names, digests) → as many `#`;
/// - the test's own temporary directory → `<WS>`.
/// Counts, sizes, versions, keys, column names and the layout of every line are compared as printed.
func normalizedOutput(_ text: String, _ ws: Workspace) -> String {
    var text = text.replacingOccurrences(of: ws.directory.path, with: "<WS>")
    text = text.replacing(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/) { match in
        let template = "YYYY-MM-DDTHH:MM:SS.sssssssssZ"
        return String(template.prefix(match.output.0.count - 1)) + "Z"
    }
    text = text.replacing(/[0-9a-f]{12,}/) { String(repeating: "#", count: $0.output.count) }
    return text
}

/// Compares whole outputs line by line, so a failure shows the first line that differs.
func expectSameOutput(_ actual: String, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let a = actual.split(separator: "\n", omittingEmptySubsequences: false), e = expected.split(separator: "\n", omittingEmptySubsequences: false)
    for (index, (line, wanted)) in zip(a, e).enumerated() where line != wanted {
        Issue.record("line \(index + 1) differs:\n  actual:   \(line)\n  expected: \(wanted)\nwhole output:\n\(actual)", sourceLocation: sourceLocation)
        return
    }
    #expect(a.count == e.count, "line counts differ (\(a.count) vs \(e.count)); whole output:\n\(actual)", sourceLocation: sourceLocation)
}

extension Workspace {
    /// A version's shard files: `<split>/<basename>` → URL, from its manifest.
    func shardFiles(_ dataset: String, _ version: String) throws -> [String: URL] {
        var files: [String: URL] = [:]
        for (split, info) in try manifest(dataset, version).splits {
            for shard in info.shards {
                files["\(split)/\(shard.basename)"] = versionDirectory(dataset, version).appendingPathComponent("\(split)/\(shard.basename)")
            }
        }
        return files
    }

    /// Every file under a version directory, with compressed shards also decompressed: what "no byte of the
    /// version" means.
    func everyByte(_ dataset: String, _ version: String) throws -> [(path: String, bytes: [UInt8])] {
        let root = versionDirectory(dataset, version)
        var result: [(String, [UInt8])] = []
        let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)!
        for case let url as URL in enumerator where !url.hasDirectoryPath {
            let bytes = Array(try Data(contentsOf: url))
            result.append((url.path, bytes))
            if url.pathExtension == "zstd" { result.append((url.path + " (decompressed)", try Zstd.decompress(bytes))) }
        }
        return result
    }

    /// Copies the dataset directory under a new output root, so one corruption does not spoil another test case.
    func copyDatasets(to name: String) throws -> URL {
        let root = directory.appendingPathComponent(name)
        try FileManager.default.copyItem(at: datasets, to: root)
        return root
    }
}

extension Array where Element == UInt8 {
    func contains(bytes needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return false }
        return withUnsafeBufferPointer { haystack in
            needle.withUnsafeBufferPointer { needle in
                var index = 0
                while index + needle.count <= haystack.count {
                    if haystack[index] == needle[0] && memcmp(haystack.baseAddress! + index, needle.baseAddress!, needle.count) == 0 { return true }
                    index += 1
                }
                return false
            }
        }
    }
}

/// A feedback table whose rows carry text no other row has (`note`), so a forgotten row can be searched for
/// byte by byte; `user_id` is also an output column, so rows can be forgotten by group.
func seedNotes(_ ws: Workspace, from first: Int = 1, count: Int) throws {
    if first == 1 {
        try ws.sql("CREATE TABLE $S.notes (id bigint PRIMARY KEY, user_id bigint NOT NULL, note text NOT NULL, payload bytea NOT NULL)")
    }
    try ws.sql("""
        INSERT INTO $S.notes
        SELECT g, g % 10, 'note-of-row-' || g || '-zz', decode(repeat(lpad(to_hex(g * 7919), 8, '0'), 40), 'hex')
        FROM generate_series(\(first), \(first + count - 1)) AS g
        """)
}

let notesPipeline = """
    name: notes
    source:
      query: SELECT id, user_id, note, payload FROM $S.notes
      cursor_column: id
      key_column: id
    columns:
      - name: user_id
      - name: note
      - name: payload
    split:
      group_column: user_id
      seed: s1
      ratios: {train: 0.6, val: 0.2, test: 0.2}
    shards:
      size_limit: 2KiB
    """

/// The payload `seedNotes` gives a row.
func notesPayload(_ id: Int) -> [UInt8] {
    let word = String(format: "%08x", id * 7919)
    let bytes = stride(from: 0, to: 8, by: 2).map { UInt8(word.dropFirst($0).prefix(2), radix: 16)! }
    return Array([[UInt8]](repeating: bytes, count: 40).joined())
}
