import ArgumentParser
import Foundation

/// Options shared by the commands that take a pipeline: `<pipeline>` is a name in the pipelines directory or a path.
struct PipelineOptions: ParsableArguments {
    @Argument(help: "A pipeline name (pipelines/<name>.yaml) or the path of a pipeline file.")
    var pipeline: String

    @Option(name: .customLong("pipelines-dir"), help: "Where pipeline names are looked up.")
    var pipelinesDirectory = "pipelines"

    var path: String {
        if pipeline.hasSuffix(".yaml") || pipeline.hasSuffix(".yml") || pipeline.contains("/") { return pipeline }
        for ext in ["yaml", "yml"] {
            let candidate = (pipelinesDirectory as NSString).appendingPathComponent("\(pipeline).\(ext)")
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
        }
        return (pipelinesDirectory as NSString).appendingPathComponent("\(pipeline).yaml")
    }
}
