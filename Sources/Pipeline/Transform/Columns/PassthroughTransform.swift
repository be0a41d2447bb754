import Media
import Postgres
import MDS

/// The original media bytes, optionally stream-copied into one normalized container (no re-encode). Empty media is
/// `media_empty` and media over `max_input_mb` is `media_too_large`, whether it comes from a bytea or a file.
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
        return .success([MDSColumn(name: name, encoding: try! MDSEncoding(parsing: "bytes"))])
    }

    func apply(_ value: PostgresValue, sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) -> [(String, MDSValue)] {
        if remux == nil, case .bytea(let bytes) = value {
            // The bytes as they are, in place (a slice of libpq's buffer): a value of hundreds of MB is never copied.
            do { try Media.checkInputSize(bytes.count, limits: context.limits, label: "input") } catch {
                throw SampleRejection(media: error)
            }
            return [(name, .borrowedBytes(bytes))]
        }
        let input = try mediaInput(value, context: context)
        guard let remux else {
            // Through Media, so a file is size-checked before it is read and empty or over-limit bytes are refused with
            // the same reasons as by every other media transform.
            do { return [(name, .bytes(try Media.readAll(input, limits: context.limits)))] } catch {
                throw SampleRejection(media: error)
            }
        }
        do { return [(name, .bytes(try Media.remux(input, container: remux.rawValue, limits: context.limits)))] } catch {
            throw SampleRejection(media: error)
        }
    }
}
