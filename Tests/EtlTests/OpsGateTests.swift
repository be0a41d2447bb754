import Foundation
import Testing

/// `expect:` bounds: a run that breaks one exits 8 naming the bound and the figure, publishes nothing, and leaves the
/// cursor where it was, so the same rows are there for the run after the data (or the bound) is fixed.
@Suite("etl run: quality gates")
struct OpsGateTests {
    /// seedFeedback's labels cycle good/bad/meh; the label_map column quarantines 'meh' unless it has a default.
    static func pipeline(expect: String, labelMap: String = "{values: {good: 0, bad: 1}, encoding: int32}") -> String {
        basicPipeline.replacingOccurrences(
            of: "  - name: created_at\n",
            with: "  - name: created_at\n  - name: label_id\n    from: label\n    label_map: \(labelMap)\n")
            + "\nexpect:\n" + expect
    }

    /// Exit 8, the bound's name and figure on stderr, no version, no staging left, and the next run (without the
    /// bound) publishes every row: the cursor did not move.
    func expectGateFailure(_ ws: Workspace, rows: Int, contains fragments: [String]) throws {
        let result = try ws.etl("run", "fb")
        #expect(result.status == 8, "\(result.output)")
        #expect(result.stderr.contains("a quality gate failed"), "\(result.stderr)")
        for fragment in fragments { #expect(result.stderr.contains(fragment), "missing '\(fragment)' in: \(result.stderr)") }
        #expect(ws.versions("fb").isEmpty)
        #expect(ws.datasetEntries("fb").allSatisfy { !$0.hasPrefix(".staging") }, "\(ws.datasetEntries("fb"))")
        try ws.writePipeline("fb", Self.pipeline(expect: "  min_new_rows: 0\n", labelMap: "{values: {good: 0, bad: 1}, default: 2, encoding: int32}"))
        let next = try ws.etl("run", "fb")
        #expect(next.status == 0, "\(next.output)")
        #expect(try ws.manifest("fb", "v1").counts.rowsRead == rows)
    }

    @Test func everyBoundMetPublishes() throws {
        let ws = try Workspace("gatepass")
        try seedFeedback(ws, count: 30)
        try ws.writePipeline("fb", Self.pipeline(expect: """
              min_new_rows: 30
              max_quarantine_ratio: 0.34
              allowed_labels: {label: [good, bad, meh], label_id: [good, bad], rating: [1, 2, 3, 4, 5]}
              max_split_share: 0.9
            """))
        let result = try ws.etl("run", "fb")
        #expect(result.status == 0, "\(result.output)")
        #expect(ws.versions("fb") == ["v1"])
        #expect(try ws.manifest("fb", "v1").counts.quarantined == 10)
    }

    @Test func tooFewRowsExits8() throws {
        let ws = try Workspace("gatemin")
        try seedFeedback(ws, count: 20)
        try ws.writePipeline("fb", Self.pipeline(expect: "  min_new_rows: 50\n"))
        try expectGateFailure(ws, rows: 20, contains: ["expect.min_new_rows", "20 new rows read, at least 50 expected"])
    }

    @Test func tooMuchQuarantineExits8() throws {
        let ws = try Workspace("gatequar")
        try seedFeedback(ws, count: 30)
        try ws.writePipeline("fb", Self.pipeline(expect: "  max_quarantine_ratio: 0.2\n"))
        try expectGateFailure(ws, rows: 30, contains: ["expect.max_quarantine_ratio", "10 of 30 rows quarantined (33.3%), at most 20.0% allowed"])
    }

    @Test func unexpectedLabelExits8() throws {
        let ws = try Workspace("gatelabel")
        try seedFeedback(ws, count: 30)
        // label_id maps meh to the default 2, which no allowed label names; label (plain str) holds 'meh' itself.
        try ws.writePipeline("fb", Self.pipeline(expect: "  allowed_labels: {label: [good, bad], label_id: [good, bad]}\n",
                                                 labelMap: "{values: {good: 0, bad: 1}, default: 2, encoding: int32}"))
        try expectGateFailure(ws, rows: 30, contains: [
            "expect.allowed_labels.label: values outside [bad, good]: 'meh' in 10 samples",
            "expect.allowed_labels.label_id: values outside [bad, good]: '2' in 10 samples",
        ])
    }

    @Test func lopsidedSplitExits8() throws {
        let ws = try Workspace("gatesplit")
        try seedFeedback(ws, count: 30)
        try ws.writePipeline("fb", Self.pipeline(expect: "  max_split_share: 0.2\n"))
        try expectGateFailure(ws, rows: 30, contains: ["expect.max_split_share: split 'train' holds"])
    }

    @Test func boundOnAMissingColumnIsAConfigError() throws {
        let ws = try Workspace("gatecfg")
        try ws.writePipeline("fb", Self.pipeline(expect: "  allowed_labels: {lable: [good]}\n  max_split_shares: 0.5\n"))
        let result = try ws.etl("validate", "fb", "--offline")
        #expect(result.status == 2, "\(result.output)")
        #expect(result.stderr.contains("'expect.allowed_labels' names column 'lable', which is not an output column (did you mean 'label'?)"), "\(result.stderr)")
        #expect(result.stderr.contains("unknown key 'expect.max_split_shares' (did you mean 'max_split_share'?)"), "\(result.stderr)")
    }
}
