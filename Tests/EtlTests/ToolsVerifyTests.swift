import Foundation
import Dataset
import MDS
import Testing

@Suite("etl verify: every hash, shard and sample")
struct ToolsVerifyTests {
    /// Two versions of `fb`; returns a shard only v2 lists and one both list.
    private func twoVersions(_ ws: Workspace) throws -> (ownShard: String, sharedShard: String) {
        try seedFeedback(ws, count: 40)
        try ws.writePipeline("fb", basicPipeline)
        #expect(try ws.etl("run", "fb").status == 0)
        try seedFeedback(ws, from: 41, count: 15)
        #expect(try ws.etl("run", "fb").status == 0)
        let v2 = try ws.manifest("fb", "v2")
        let train = try #require(v2.splits["train"])
        let own = try #require(train.shards.last { $0.createdBy == "v2" })
        let shared = try #require(train.shards.first { $0.createdBy == "v1" })
        return ("train/\(own.basename)", "train/\(shared.basename)")
    }

    @Test func goodVersionsPass() throws {
        let ws = try Workspace("verifyok")
        _ = try twoVersions(ws)
        let result = try ws.etl("verify", "fb", "--all")
        #expect(result.status == 0, "\(result.output)")
        var expected: [String] = []
        for version in ["v1", "v2"] {
            let manifest = try ws.manifest("fb", version)
            let shards = manifest.splits.values.flatMap(\.shards)
            let bytes = shards.reduce(0) { $0 + $1.bytes }
            let size = bytes < 1024 ? "\(bytes) B" : String(format: "%.1f KiB", Double(bytes) / 1024)
            expected.append("fb@\(version): ok (3 splits, \(shards.count) shards, \(manifest.counts.samples) samples, \(size))")
        }
        expectSameOutput(result.stdout, expected.joined(separator: "\n") + "\n")
        #expect(result.stderr.isEmpty)
        // The newest version by default.
        #expect(try ws.etl("verify", "fb").stdout.hasPrefix("fb@v2: ok ("))
        #expect(try ws.etl("verify", "nope").status == 7)
    }

    @Test func flippedByteIsNamedAndExits9() throws {
        let ws = try Workspace("verifyflip")
        let (own, _) = try twoVersions(ws)
        let root = try ws.copyDatasets(to: "flip")
        let file = root.appendingPathComponent("fb/v2/\(own)")
        var bytes = Array(try Data(contentsOf: file))
        bytes[bytes.count / 2] ^= 0x20
        try Data(bytes).write(to: file)

        let result = try ws.etl("verify", "fb@v2", "--root", root.path)
        #expect(result.status == 9, "\(result.output)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("fb@v2: FAILED, 1 problem (") == true, "\(result.stdout)")
        #expect(lines.count == 2 && lines[1].contains("shard \(file.path) has sha256 ") && lines[1].contains("index.json says"), "\(result.stdout)")
        #expect(result.stderr.contains("fb@v2 failed verification"))
        // v1 does not list that shard: still good.
        #expect(try ws.etl("verify", "fb@v1", "--root", root.path).status == 0)
    }

    @Test func truncatedAndMissingShardsAreNamed() throws {
        let ws = try Workspace("verifytrunc")
        let (own, shared) = try twoVersions(ws)
        let root = try ws.copyDatasets(to: "broken")
        let truncated = root.appendingPathComponent("fb/v2/\(shared)")
        let bytes = try Data(contentsOf: truncated)
        try bytes.dropLast(7).write(to: truncated)
        let missing = root.appendingPathComponent("fb/v2/\(own)")
        try FileManager.default.removeItem(at: missing)

        let result = try ws.etl("verify", "fb", "--all", "--root", root.path)
        #expect(result.status == 9, "\(result.output)")
        let expected = """
            fb@v1: ok (
            fb@v2: FAILED, 2 problems (
              shard \(truncated.path) is corrupt: it has \(bytes.count - 7) bytes, index.json says \(bytes.count)
              \(missing.path): is missing: train/index.json lists it
            """.split(separator: "\n").map(String.init)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(result.stdout)")
        for (line, wanted) in zip(lines, expected) {
            #expect(wanted.hasSuffix("(") ? line.hasPrefix(wanted) : line == wanted, "\(line)\n≠ \(wanted)")
        }
    }

    @Test func manifestThatDisagreesWithIndexIsCaught() throws {
        let ws = try Workspace("verifymani")
        let (own, _) = try twoVersions(ws)
        let root = try ws.copyDatasets(to: "mani")
        let path = root.appendingPathComponent("fb/v2/manifest.json")
        var manifest = try DatasetManifest.decode(Data(contentsOf: path))
        let basename = String(own.dropFirst("train/".count))
        let position = try #require(manifest.splits["train"]!.shards.firstIndex { $0.basename == basename })
        manifest.splits["train"]!.shards[position].samples += 1
        manifest.splits["train"]!.samples += 1
        manifest.counts.samples += 1
        try manifest.encoded().write(to: path)

        let result = try ws.etl("verify", "fb@v2", "--root", root.path, "--json")
        #expect(result.status == 9, "\(result.output)")
        let reports = try JSONDecoder().decode([VerificationReport].self, from: Data(result.stdout.utf8))
        let problems = try #require(reports.first).problems
        let indexPath = root.appendingPathComponent("fb/v2/train/index.json").path
        #expect(problems.contains { $0.path == indexPath && $0.message.contains("lists") && $0.message.contains("manifest.json says split train has") })
        #expect(problems.contains { $0.path == indexPath && $0.message.contains("about \(basename)") && $0.message.contains("samples") })
        // The shards themselves are fine: every problem is about index.json vs manifest.json.
        #expect(problems.allSatisfy { $0.path == indexPath }, "\(problems)")
    }
}
