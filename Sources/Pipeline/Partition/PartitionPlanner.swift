import Dataset
import Foundation
import Postgres

/// `etl plan`: fixes a partitioned run before any partition starts. Under the dataset's lock, in one read-only
/// snapshot, it does what a single run does before it reads — choose the parent, find the exactly-once re-read window,
/// record the snapshot — and then, instead of reading the rows, asks the source for the highest cursor it sees past
/// the window's start. Partitions read that range, each with its own snapshot (pods start at different times and
/// cannot share one); the version records the plan's snapshot, so the next run's window covers what commits late.
public enum PartitionPlanner {
    public enum Outcome: Sendable {
        case planned(RunPlan)
        /// A plan with this run id and the same file and partition count exists (a retried plan Job): kept as it is.
        case existing(RunPlan)
    }

    public static func plan(_ config: PipelineConfig, partitions: Int, runId requested: String?, full: Bool,
                            emit: (RunEvent) -> Void = { _ in }) throws -> Outcome {
        do { try PartitionSpec.checkCount(partitions) } catch { throw PartitionError.invalidPartition(error.description) }
        if let problem = RunPlanCheck.keyIndexProblem(config) { throw problem }
        let runId = requested ?? RunIdentifier.make()
        if let problem = RunIdentifier.problem(runId) { throw PartitionError.invalidPartition(problem) }
        let store = try runArea(config)
        if let existing = try existingPlan(store, runId: runId, config: config, partitions: partitions) { return .existing(existing) }

        let lock = TestHooks.skipLock ? nil : try store.lock(runId: runId)
        defer { withExtendedLifetime(lock) {} }
        let latest = try store.versions().last
        let parentName = full ? nil : latest
        let parent = try parentName.map { name throws(DatasetError) in try store.parent(name) }
        let cursorFrom = parent?.manifest.cursor.to
        let source = try PreparedSource(config)
        let columns = PipelineRunner.describeColumns(source.plan, config: config)
        if let parent {
            try PipelineRunner.checkCompatible(parent: parent.manifest, plan: source.plan, columns: columns, config: config)
        }
        let snapshot = try SourceSnapshot.begin(on: source.connection)
        let revisit = try PipelineRunner.planRevisit(store: store, parent: parent, source: source)
        if let notice = revisit.notice { emit(.notice(notice)) }
        let type = source.plan.cursorType
        let top = try source.connection.query(source.query.maxCursorSQL(after: revisit.after == nil ? nil : type),
                                              revisit.after.map { [$0] } ?? []).rows.first?.values.first ?? .null
        try SourceSnapshot.finish(on: source.connection)
        let through = top.textForParameter
        // As in a single run: rows found only in the re-read window lie below the parent's cursor, which never moves back.
        var cursorTo = through ?? cursorFrom
        if let point = CursorPoint(top), let parentTop = revisit.top, point <= parentTop { cursorTo = cursorFrom }

        let plan = RunPlan(
            runId: runId, dataset: config.dataset,
            pipeline: .init(name: config.name, path: config.path, configSha256: config.sha256), parent: parentName, latest: latest,
            partitions: partitions,
            cursor: .init(column: config.source.cursorColumn, type: type, from: cursorFrom, to: cursorTo,
                          revisitFrom: revisit.after != cursorFrom ? revisit.after : nil),
            columns: columns, readAfter: revisit.after, readThrough: through, publishedIn: revisit.publishedIn, source: snapshot,
            createdAt: ISO8601DateFormatter.withFractionalSeconds.string(from: Date()))
        let created: DatasetError?
        do { try store.createRun(plan); created = nil } catch { created = error }
        if let created {
            // Another plan with this id got there first (two plan pods): keep it if it is the same run.
            guard created.code == .conflict, let existing = try existingPlan(store, runId: runId, config: config, partitions: partitions)
            else { throw created }
            return .existing(existing)
        }
        return .planned(plan)
    }

    /// The store a pipeline writes to, as a holder of run areas.
    static func runArea(_ config: PipelineConfig) throws -> any RunArea {
        let store = try DatasetStores.open(outputRoot: config.outputRoot, dataset: config.dataset)
        guard let area = store as? any RunArea else { throw PartitionError.unsupportedStore(store.location) }
        return area
    }

    private static func existingPlan(_ store: any RunArea, runId: String, config: PipelineConfig, partitions: Int) throws -> RunPlan? {
        let found: Result<RunPlan, DatasetError>
        do { found = .success(try store.plan(ofRun: runId)) } catch { found = .failure(error) }
        if case .failure(let error) = found, error.code == .notFound { return nil }
        let existing = try found.get()
        if let problem = RunPlanCheck.configProblem(plan: existing, configSha256: config.sha256) { throw problem }
        guard existing.partitions == partitions else {
            throw PartitionError.invalidPartition("run \(runId) is already planned with \(existing.partitions) partitions, not \(partitions); choose another run id")
        }
        return existing
    }
}
