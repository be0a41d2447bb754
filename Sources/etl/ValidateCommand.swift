import ArgumentParser
import Pipeline

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a pipeline file, and its query's columns and types against the database.",
        discussion: "Reports every problem at once as file:line:column. Exits 2 on any problem in the file, 3 or 4 when the database cannot be reached or rejects the query.")

    @OptionGroup var pipeline: PipelineOptions

    @Flag(help: "Check only the file; do not connect to the database.")
    var offline = false

    func run() throws {
        let config: PipelineConfig
        do { config = try PipelineConfig.load(path: pipeline.path) } catch { throw fail(error, context: pipeline.path) }
        do { try PipelineValidator.checkOutputRoot(config) } catch { throw fail(error, context: pipeline.path) }
        if !offline {
            let warnings: [String]
            do { warnings = try PipelineValidator.checkAgainstSource(config) } catch { throw fail(error, context: pipeline.path) }
            for warning in warnings { printError("etl: \(pipeline.path): warning: \(warning)") }
        }
        print("\(pipeline.path): ok (\(config.columns.count) columns → dataset '\(config.dataset)'\(offline ? "; query not checked" : ""))")
    }
}
