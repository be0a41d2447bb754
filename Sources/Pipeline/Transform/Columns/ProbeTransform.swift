import Media
import Postgres
import MDS

/// Facts about the media as plain columns named `<name>_<field>`. A field the media lacks (e.g. the sample rate of a
/// silent video) is 0 or the empty string, so every sample has every column.
///
/// `rotation` follows ffprobe: it is the display-matrix rotation `ffprobe -show_streams` prints in the stream's side
/// data, in whole degrees from -180 to 180, counter-clockwise positive (90: stored sideways, shown upright after a
/// quarter turn counter-clockwise; -90 the other way; 180 or -180 upside down), 0 without rotation metadata. The
/// stored `width`/`height` are reported before that rotation; `video_frames` and `image` apply it.
struct ProbeTransform: ColumnTransform {
    static let key = "probe"

    enum Field: String, CaseIterable {
        case container, duration, video_codec, width, height, fps, rotation, audio_codec, sample_rate, channels

        var encoding: MDSEncoding {
            switch self {
            case .container, .video_codec, .audio_codec: return .str
            case .duration, .fps: return .float64
            case .width, .height, .rotation, .sample_rate, .channels: return .int32
            }
        }

        func value(of probe: MediaProbe) -> MDSValue {
            switch self {
            case .container: return .string(probe.container)
            case .duration: return .float(probe.durationSeconds ?? 0)
            case .video_codec: return .string(probe.videoCodec ?? "")
            case .width: return .int(Int64(probe.width ?? 0))
            case .height: return .int(Int64(probe.height ?? 0))
            case .fps: return .float(probe.fps ?? 0)
            case .rotation: return .int(Int64(probe.rotation))
            case .audio_codec: return .string(probe.audioCodec ?? "")
            case .sample_rate: return .int(Int64(probe.sampleRate ?? 0))
            case .channels: return .int(Int64(probe.channels ?? 0))
            }
        }
    }

    var fields: [Field]

    static func parse(_ node: ConfigNode, column: String, issues: inout ConfigIssues) -> ProbeTransform? {
        guard var reader = MappingReader(node, issues: &issues) else { return nil }
        var fields = Field.allCases
        if let list = reader.node("fields") {
            if let items = list.sequence {
                fields = items.compactMap { item in
                    guard let text = item.scalarString, let field = Field(rawValue: text) else {
                        issues.add("unknown probe field '\(item.scalarString ?? "?")' (known: \(Field.allCases.map(\.rawValue).joined(separator: ", ")))", at: item.location)
                        return nil
                    }
                    return field
                }
            } else {
                issues.add("'\(list.path)' must be a list of field names", at: list.location)
            }
        }
        reader.reportUnknownKeys(issues: &issues)
        return ProbeTransform(fields: fields)
    }

    func outputColumns(name: String, sourceType: SourceType) -> Result<[MDSColumn], TransformTypeError> {
        if let problem = mediaSourceCheck(sourceType) { return .failure(problem) }
        return .success(fields.map { MDSColumn(name: "\(name)_\($0.rawValue)", encoding: $0.encoding) })
    }

    func apply(_ value: PostgresValue, sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) -> [(String, MDSValue)] {
        let input = try mediaInput(value, context: context)
        let probe: MediaProbe
        do { probe = try Media.probe(input, limits: context.limits) } catch { throw SampleRejection(media: error) }
        return fields.map { ("\(name)_\($0.rawValue)", $0.value(of: probe)) }
    }
}
