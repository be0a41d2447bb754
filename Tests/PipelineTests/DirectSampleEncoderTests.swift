import Foundation
import MDS
@testable import Pipeline
import Postgres
import Testing

/// Which pipelines take the direct encoding (the runs' equality with the row path is in EtlTests/DirectEncodingTests).
@Suite struct DirectSampleEncoderTests {
    private static let columns = [
        PostgresColumn(name: "id", type: PostgresType(oid: 20, name: "int8")),
        PostgresColumn(name: "label", type: PostgresType(oid: 25, name: "text")),
        PostgresColumn(name: "stars", type: PostgresType(oid: 21, name: "int2")),
        PostgresColumn(name: "at", type: PostgresType(oid: 1184, name: "timestamptz")),
        PostgresColumn(name: "doc", type: PostgresType(oid: 3802, name: "jsonb")),
        PostgresColumn(name: "clip", type: PostgresType(oid: 17, name: "bytea")),
    ]

    private func encoder(_ columns: String) throws -> DirectSampleEncoder? {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("direct-\(UUID().uuidString).yaml").path
        try """
            name: t
            source: {query: "SELECT * FROM t", cursor_column: id, key_column: id}
            columns: \(columns)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try PipelineConfig.load(path: path, environment: [:], workingDirectory: "/tmp")
        let plan = try SamplePlan(config: config, columns: Self.columns)
        let context = TransformContext(mediaRoot: nil, limits: .default)
        return DirectSampleEncoder(processor: RowProcessor(plan: plan, splits: SplitAssigner(config.split), context: context))
    }

    @Test func plainColumnsOfAnyTypeAreEncodedDirectly() throws {
        #expect(try encoder("[{name: label}, {name: stars, encoding: int64}, {name: at}, {name: doc}, {name: l2, from: label, default: x}]") != nil)
        #expect(try encoder("[{name: label, encoding: json}, {name: at, encoding: str}]") != nil)
        #expect(try encoder("[{name: label}, {name: clip}, {name: picture, from: clip, encoding: jpeg}]") != nil)
    }

    @Test func aColumnThatNeedsTheRowPathKeepsTheWholeRunThere() throws {
        #expect(try encoder("[{name: label}, {name: clip, passthrough: {}}]") == nil)
        #expect(try encoder("[{name: label, label_map: {values: {a: b}}}]") == nil)
        #expect(try encoder("[{name: label}, {name: frames, from: clip, video_frames: {fps: 1, width: 8, height: 8}}]") == nil)
    }
}
