import Media
import Postgres
import MDS

/// Audio decoded and resampled to one rate and channel count: an ndarray shaped (frames, channels), or raw bytes.
struct AudioPCMTransform: ColumnTransform {
    static let key = "audio_pcm"

    enum Output: String, CaseIterable { case ndarray, bytes }

    var options: AudioOptions
    var window: WindowColumns?
    var output: Output

    static func parse(_ node: ConfigNode, column: String, issues: inout ConfigIssues) -> AudioPCMTransform? {
        guard var reader = MappingReader(node, issues: &issues) else { return nil }
        let rate = reader.int("sample_rate", range: 1000...384_000, issues: &issues) ?? 16_000
        let channels = reader.int("channels", range: 1...8, issues: &issues) ?? 1
        let format = reader.choice("format", among: [SampleFormat.s16, .f32], issues: &issues) ?? .s16
        let maxSeconds = reader.double("max_seconds", range: 0.001...86_400, issues: &issues)
        let output = reader.choice("output", Output.self, issues: &issues) ?? .ndarray
        let window = reader.node("window").flatMap { WindowColumns.parse($0, issues: &issues) }
        reader.reportUnknownKeys(issues: &issues)
        return AudioPCMTransform(
            options: AudioOptions(sampleRate: rate, channels: channels, format: format, window: nil, maxDurationSeconds: maxSeconds),
            window: window, output: output)
    }

    var extraSourceColumns: [String] { window?.columns ?? [] }

    private var dtype: NDType { options.format == .s16 ? .int16 : .float32 }

    func outputColumns(name: String, sourceType: SourceType) -> Result<[MDSColumn], TransformTypeError> {
        if let problem = mediaSourceCheck(sourceType) { return .failure(problem) }
        return .success([MDSColumn(name: name, encoding: output == .bytes ? .bytes : .ndarray(dtype: dtype))])
    }

    func apply(_ value: PostgresValue, sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) -> [(String, MDSValue)] {
        var options = self.options
        options.window = try window?.resolve(row)
        let input = try mediaInput(value, context: context)
        let pcm: PCMAudio
        do { pcm = try Media.audioPCM(input, options: options, limits: context.limits) } catch { throw SampleRejection(media: error) }
        guard pcm.frameCount > 0 else {
            throw SampleRejection(reason: .mediaNoAudio, message: "no audio sample falls inside the requested window")
        }
        switch output {
        case .bytes: return [(name, .bytes(pcm.data))]
        case .ndarray: return [(name, .ndarray(NDArray(dtype: dtype, shape: [pcm.frameCount, pcm.channels], data: pcm.data)))]
        }
    }
}
