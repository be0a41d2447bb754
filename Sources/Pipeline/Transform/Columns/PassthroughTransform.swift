import Foundation
import Media
import Postgres
import MDS

/// The original media bytes, optionally stream-copied into one normalized container (no re-encode).
struct PassthroughTransform: ColumnTransform {
    static let key = "passthrough"

    enum Container: String, CaseIterable { case mp4, matroska, webm, mov }

    var remux: Container?

    static func parse(_ node: ConfigNode, column: String, issues: inout ConfigIssues) -> PassthroughTransform? {
        guard var reader = MappingReader(node, issues: &issues) else { return nil }
        let remux = reader.choice("remux", Container.self, issues: &issues)
        reader.reportUnknownKeys(issues: &issues)
        return PassthroughTransform(remux: remux)
    }

    func outputColumns(name: String, sourceType: SourceType) -> Result<[MDSColumn], TransformTypeError> {
        if let problem = mediaSourceCheck(sourceType) { return .failure(problem) }
        return .success([MDSColumn(name: name, encoding: .bytes)])
    }

    func apply(_ value: PostgresValue, sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) -> [(String, MDSValue)] {
        let input = try mediaInput(value, context: context)
        guard let remux else {
            switch input {
            case .bytes(let bytes): return [(name, .bytes(bytes))]
            case .file(let path):
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw SampleRejection(reason: .mediaFileNotFound, message: "cannot read \(path)")
                }
                guard data.count <= context.limits.maxInputBytes else {
                    throw SampleRejection(reason: .mediaTooLarge, message: "\(path) is \(data.count) bytes, over the \(context.limits.maxInputBytes)-byte limit")
                }
                return [(name, .bytes(Array(data)))]
            }
        }
        do { return [(name, .bytes(try Media.remux(input, container: remux.rawValue, limits: context.limits)))] } catch {
            throw SampleRejection(media: error)
        }
    }
}
