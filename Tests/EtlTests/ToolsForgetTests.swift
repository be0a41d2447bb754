import Foundation
import Dataset
import MDS
import Testing

@Suite("etl forget: samples removed from every version, never published again")
struct ToolsForgetTests {
    @Test func forgottenKeysLeaveNoByteBehindAndStayForgotten() throws {
        let ws = try Workspace("forget")
        try seedNotes(ws, count: 60)
        try ws.writePipeline("notes", notesPipeline)
        #expect(try ws.etl("run", "notes").status == 0)
        try seedNotes(ws, from: 61, count: 20)
        #expect(try ws.etl("run", "notes").status == 0)

        let before = ["v1": try ws.allSamples("notes", "v1"), "v2": try ws.allSamples("notes", "v2")]
        let filesBefore = ["v1": try ws.shardFiles("notes", "v1"), "v2": try ws.shardFiles("notes", "v2")]
        let inodesBefore = try filesBefore.mapValues { try $0.mapValues(inode) }
        // Key 7 is in a shard v1 wrote and v2 shares; key 65 only in v2.
        let forgotten = ["7", "65"]
        let holding = try Set(filesBefore.flatMap { version, files in
            try files.filter { _, url in try shardKeys(url, ws: ws, version: version).contains { forgotten.contains($0) } }.map(\.key)
        })

        let result = try ws.etl("forget", "notes", "--key", "7", "65", "--reason", "user request 42")
        #expect(result.status == 0, "\(result.output)")
        expectSameOutput(result.stdout, """
            notes: 2 keys found and removed; 2 new tombstones
            VERSION  SAMPLES REMOVED  SHARDS REWRITTEN
            v1       1                1
            v2       2                2

            """)

        // verify passes on every retained version.
        let verify = try ws.etl("verify", "notes", "--all")
        #expect(verify.status == 0, "\(verify.output)")

        for version in ["v1", "v2"] {
            let after = try ws.allSamples("notes", version)
            var expected = before[version]!
            for key in forgotten { expected[key] = nil }
            #expect(Set(after.keys) == Set(expected.keys), "\(version)")
            for (key, sample) in expected { #expect(after[key]?.values == sample.values, "\(version) sample \(key) changed") }
            // No byte of the version, compressed or not, holds the forgotten rows' note or payload.
            for (path, bytes) in try ws.everyByte("notes", version) {
                for id in [7, 65] {
                    #expect(!bytes.contains(bytes: Array("note-of-row-\(id)-zz".utf8)), "\(path) still holds row \(id)'s note")
                    #expect(!bytes.contains(bytes: notesPayload(id)), "\(path) still holds row \(id)'s payload")
                }
            }
            // Shards that did not hold a forgotten sample are the very same files (same inode), still shared.
            let files = try ws.shardFiles("notes", version)
            for (name, oldInode) in inodesBefore[version]! where !holding.contains(name) {
                let url = try #require(files[name], "\(version) lost untouched shard \(name)")
                #expect(try inode(url) == oldInode, "\(version)/\(name) was rewritten")
            }
            for name in holding { #expect(files[name] == nil, "\(version) still lists \(name)") }
            let manifest = try ws.manifest("notes", version)
            let redaction = try #require(manifest.redactions.last)
            #expect(redaction.keys == (version == "v1" ? 1 : 2) && redaction.reason == "user request 42" && redaction.method == "key")
            #expect(redaction.keysDigest?.count == 64)
        }
        // A rewritten shard v1 and v2 both list is one file, linked into both.
        let sharedNow = Set(try ws.shardFiles("notes", "v1").keys).intersection(try ws.shardFiles("notes", "v2").keys)
        for name in sharedNow {
            #expect(try inode(ws.shardFiles("notes", "v1")[name]!) == inode(ws.shardFiles("notes", "v2")[name]!), "\(name) no longer shared")
        }

        // Tombstones hold salted hashes, never the keys.
        let stones = try String(contentsOf: ws.datasets.appendingPathComponent("notes/tombstones.json"), encoding: .utf8)
        let decoded = try JSONDecoder().decode(Tombstones.self, from: Data(stones.utf8))
        #expect(decoded.hashes.count == 2 && !stones.contains("\"7\"") && !stones.contains("\"65\""))

        // A rebuild from the source, which still has rows 7 and 65, does not bring them back.
        let rebuild = try ws.etl("run", "notes", "--full")
        #expect(rebuild.status == 0, "\(rebuild.output)")
        #expect(rebuild.stderr.contains("skipped 2 rows whose key was forgotten"), "\(rebuild.output)")
        let v3 = try ws.allSamples("notes", "v3")
        #expect(v3.count == 78 && v3["7"] == nil && v3["65"] == nil)
        for (path, bytes) in try ws.everyByte("notes", "v3") {
            #expect(!bytes.contains(bytes: Array("note-of-row-7-zz".utf8)), "\(path)")
        }
        #expect(try ws.etl("verify", "notes", "--all").status == 0)

        // An incremental run on top shares the rewritten shards and adds only new rows.
        try seedNotes(ws, from: 81, count: 5)
        let next = try ws.etl("run", "notes")
        #expect(next.status == 0, "\(next.output)")
        #expect(try ws.allSamples("notes", "v4").count == 83)
        #expect(try ws.etl("verify", "notes", "--all").status == 0)
        #expect(ws.datasetEntries("notes").allSatisfy { !$0.hasPrefix(".forget-") })
    }

    @Test func anInterruptedForgetIsFinishedByTheNextOne() throws {
        let ws = try Workspace("forgetcrash")
        try seedNotes(ws, count: 40)
        try ws.writePipeline("notes", notesPipeline)
        #expect(try ws.etl("run", "notes").status == 0)
        try seedNotes(ws, from: 41, count: 10)
        #expect(try ws.etl("run", "notes").status == 0)

        // The process dies after linking the new shards and writing one file (v1's index.json, not its manifest).
        let crashed = try ws.etl("forget", "notes", "--key", "7", environment: ["ETL_TEST_FORGET_CRASH_AFTER": "2"])
        #expect(crashed.status == 99, "\(crashed.output)")
        #expect(ws.datasetEntries("notes").contains(".forget-journal.json"))
        let broken = try ws.etl("verify", "notes@v1")
        #expect(broken.status == 9, "the crash left v1's index and manifest disagreeing")
        #expect(broken.stderr.contains("a forget was interrupted"), "\(broken.stderr)")

        // Any later forget finishes the journal first.
        let next = try ws.etl("forget", "notes", "--key", "8")
        #expect(next.status == 0, "\(next.output)")
        #expect(next.stdout.hasPrefix("notes: finished an interrupted forget first\n"), "\(next.stdout)")
        let verify = try ws.etl("verify", "notes", "--all")
        #expect(verify.status == 0, "\(verify.output)")
        for version in ["v1", "v2"] {
            let samples = try ws.allSamples("notes", version)
            #expect(samples["7"] == nil && samples["8"] == nil && samples.count == (version == "v1" ? 38 : 48))
            #expect(try ws.manifest("notes", version).redactions.map(\.keys) == [1, 1], "one redaction per forget")
            for (path, bytes) in try ws.everyByte("notes", version) {
                #expect(!bytes.contains(bytes: Array("note-of-row-7-zz".utf8)), "\(path)")
            }
        }
        #expect(ws.datasetEntries("notes").allSatisfy { !$0.hasPrefix(".forget") }, "\(ws.datasetEntries("notes"))")
    }

    @Test func forgetByGroupNeedsTheGroupColumnInTheSamples() throws {
        let ws = try Workspace("forgetgroup")
        try seedNotes(ws, count: 40)
        try ws.writePipeline("notes", notesPipeline)
        #expect(try ws.etl("run", "notes").status == 0)

        let result = try ws.etl("forget", "notes", "--where-group", "3", "--json")
        #expect(result.status == 0, "\(result.output)")
        let report = try JSONDecoder().decode(Forget.Report.self, from: Data(result.stdout.utf8))
        #expect(report.keysFound == 4 && report.versions.map(\.samplesRemoved) == [4])
        let samples = try ws.allSamples("notes", "v1")
        #expect(samples.count == 36 && samples.values.allSatisfy { $0.values["user_id"] != .int(3) })
        #expect(try ws.etl("verify", "notes").status == 0)

        // fb's samples do not hold user_id (its group column): refused, nothing changed.
        try seedFeedback(ws, count: 10)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        let refused = try ws.etl("forget", "fb", "--where-group", "3")
        #expect(refused.status == 2, "\(refused.output)")
        #expect(refused.stderr.contains("have no column 'user_id'") && refused.stderr.contains("forget by --key"), "\(refused.stderr)")
        #expect(try ws.manifest("fb", "v1").redactions.isEmpty)
        #expect(try ws.etl("forget", "fb").status == 2, "a selector is required")
    }
}

/// The keys of one shard file, decoded through its version's index entry.
func shardKeys(_ url: URL, ws: Workspace, version: String) throws -> [String] {
    let split = url.deletingLastPathComponent()
    let index = try MDSIndex.read(from: split)
    let entry = try #require(index.shards.first { $0.storedFile.basename == url.lastPathComponent })
    var keys: [String] = []
    try MDSReader(directory: split, index: index).forEachSample(in: entry) { _, sample in
        if case .string(let key)? = sample["__key__"] { keys.append(key) }
    }
    return keys
}
