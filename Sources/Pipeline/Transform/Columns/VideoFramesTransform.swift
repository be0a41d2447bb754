import Media
import Postgres
import MDS

/// Frames sampled by timestamp at a fixed rate, resized, as a uint8 tensor shaped (T, H, W, C).
/// `decode: fast` (default `exact`) picks the same frames but decodes them faster and not bit-exactly: see
/// `DecodeMode.fast`.
struct VideoFramesTransform: ColumnTransform {
    static let key = "video_frames"

    var options: VideoFramesOptions
    var window: WindowColumns?

    static func parse(_ node: ConfigNode, column: String, issues: inout ConfigIssues) -> VideoFramesTransform? {
        guard var reader = MappingReader(node, issues: &issues) else { return nil }
        let fps = reader.double("fps", range: 0.01...240, issues: &issues)
        if !reader.has("fps") { issues.add("missing required key '\(node.path).fps'", at: node.location) }
        let width = reader.int("width", range: 1...8192, issues: &issues)
        let height = reader.int("height", range: 1...8192, issues: &issues)
        if !reader.has("width") || !reader.has("height") {
            issues.add("'\(node.path)' needs width and height", at: node.location)
        }
        let resize = reader.choice("resize", among: resizeModes, issues: &issues) ?? .pad
        let pixelFormat = reader.choice("pixel_format", among: [PixelFormat.rgb24, .gray8], issues: &issues) ?? .rgb24
        let maxFrames = reader.int("max_frames", range: 1...10_000, issues: &issues) ?? 64
        // `fast` is opt-in: frames that are not bit-exact must be a decision of whoever owns the dataset.
        let decode = reader.choice("decode", among: [DecodeMode.exact, .fast], issues: &issues) ?? .exact
        let window = reader.node("window").flatMap { WindowColumns.parse($0, issues: &issues) }
        reader.reportUnknownKeys(issues: &issues)
        guard let fps, let width, let height else { return nil }
        return VideoFramesTransform(
            options: VideoFramesOptions(fps: fps, width: width, height: height, resize: resize, pixelFormat: pixelFormat, maxFrames: maxFrames, window: nil, decode: decode),
            window: window)
    }

    var extraSourceColumns: [String] { window?.columns ?? [] }

    func outputColumns(name: String, sourceType: SourceType) -> Result<[MDSColumn], TransformTypeError> {
        if let problem = mediaSourceCheck(sourceType) { return .failure(problem) }
        return .success([MDSColumn(name: name, encoding: .ndarray(dtype: .uint8))])
    }

    func apply(_ value: PostgresValue, sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) -> [(String, MDSValue)] {
        var options = self.options
        options.window = try window?.resolve(row)
        let input = try mediaInput(value, context: context)
        let tensor: FrameTensor
        do { tensor = try Media.videoFrames(input, options: options, limits: context.limits) } catch { throw SampleRejection(media: error) }
        guard tensor.frames > 0 else {
            throw SampleRejection(reason: .mediaNoFrames, message: "no frame falls inside the requested window")
        }
        let array = NDArray(dtype: .uint8, shape: [tensor.frames, tensor.height, tensor.width, tensor.channels], data: tensor.pixels)
        return [(name, .ndarray(array))]
    }
}
