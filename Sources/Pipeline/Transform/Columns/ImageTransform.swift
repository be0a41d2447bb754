import Media
import Postgres
import MDS

/// A still image (or a video's first frame, as a thumbnail), resized and re-encoded as PNG or JPEG.
struct ImageTransform: ColumnTransform {
    static let key = "image"

    enum Format: String, CaseIterable { case png, jpeg }

    var options: ImageOptions

    static func parse(_ node: ConfigNode, column: String, issues: inout ConfigIssues) -> ImageTransform? {
        guard var reader = MappingReader(node, issues: &issues) else { return nil }
        let width = reader.int("width", range: 1...16_384, issues: &issues)
        let height = reader.int("height", range: 1...16_384, issues: &issues)
        let resize = reader.choice("resize", among: resizeModes, issues: &issues) ?? .pad
        let format = reader.choice("format", Format.self, issues: &issues) ?? .png
        let quality = reader.int("quality", range: 1...100, issues: &issues)
        if quality != nil && format != .jpeg {
            issues.add("'\(node.path).quality' applies to format: jpeg only", at: node.location)
        }
        reader.reportUnknownKeys(issues: &issues)
        let imageFormat: ImageFormat = format == .png ? .png : .jpeg(quality: quality ?? 90)
        return ImageTransform(options: ImageOptions(width: width, height: height, resize: resize, format: imageFormat))
    }

    func outputColumns(name: String, sourceType: SourceType) -> Result<[MDSColumn], TransformTypeError> {
        if let problem = mediaSourceCheck(sourceType) { return .failure(problem) }
        return .success([MDSColumn(name: name, encoding: options.format == .png ? .png : .jpeg)])
    }

    func apply(_ value: PostgresValue, sourceType: SourceType, row: PostgresRow, name: String, context: TransformContext) throws(SampleRejection) -> [(String, MDSValue)] {
        let input = try mediaInput(value, context: context)
        do { return [(name, .bytes(try Media.image(input, options: options, limits: context.limits)))] } catch {
            throw SampleRejection(media: error)
        }
    }
}
