import Dataset

/// The decisions `etl run --partition` and `etl commit` take about a plan before touching data. Pure: the inputs are
/// the plan, the pipeline file's hash, the newest version and the completion records; each answer is a refusal with
/// its reason, or nothing.
public enum RunPlanCheck {
    /// The pipeline file must be the one the plan was made with: partitions built with another file (another split
    /// seed, other columns) must not be mixed into one version.
    public static func configProblem(plan: RunPlan, configSha256: String) -> PartitionError? {
        guard plan.pipeline.configSha256 != configSha256 else { return nil }
        return .configChanged(runId: plan.runId, planned: plan.pipeline.configSha256, now: configSha256)
    }

    /// Pipelines that look rows up in the lineage's key index (keys.idx) cannot be partitioned yet: replacing a row
    /// (`source.change_column`) and dropping a value already published (`dedupe:`) both need the one index every row
    /// of the version is checked against, and each partition would only see its own rows — two partitions could write
    /// the same value, and the committed version would have no keys.idx. Refused at plan time (and again by
    /// `run --partition` and `commit`, in case a plan predates this check), with what to do instead.
    public static func keyIndexProblem(_ config: PipelineConfig) -> PipelineConfigError? {
        var issues = ConfigIssues()
        if let change = config.source.changeColumn {
            issues.add("source.change_column '\(change)': partitioned runs (etl plan) do not support replacing changed rows yet; "
                       + "each partition would look up only its own rows and the version would get no key index (keys.idx). "
                       + "Use a single `etl run` for this pipeline", at: config.source.cursorLocation)
        }
        if let dedupe = config.dedupe {
            issues.add("dedupe.column '\(dedupe.column)': partitioned runs (etl plan) do not support dedupe yet; two partitions "
                       + "could each write the same value, and per-partition key indexes (keys.idx) are not merged. "
                       + "Use a single `etl run` for this pipeline", at: dedupe.location)
        }
        return issues.isEmpty ? nil : PipelineConfigError(issues: issues.all)
    }

    /// A plan is made against the newest version (its parent, or for `--full` the version it replaces as newest); a
    /// version published since (by another run or plan) makes its range stale.
    public static func parentProblem(plan: RunPlan, latest: String?) -> PartitionError? {
        guard latest != plan.latest else { return nil }
        return .parentMoved(runId: plan.runId, planned: plan.latest, latest: latest)
    }

    /// Partitions without a completion record of this plan, in order. A record of another plan (same run id, other
    /// partition count or file) counts as missing: its output was built for other rows.
    public static func missingPartitions(plan: RunPlan, records: [Int: PartitionCompletion]) -> [Int] {
        (0..<plan.partitions).filter { index in
            guard let record = records[index] else { return true }
            return record.runId != plan.runId || record.partition != index || record.partitions != plan.partitions
                || record.configSha256 != plan.pipeline.configSha256
        }
    }

    /// The version a run's commit published, if one did: the run id is in every manifest.
    public static func publishedVersion(runId: String, manifests: [DatasetManifest]) -> String? {
        manifests.first { $0.runId == runId }?.version
    }
}

/// Why a partitioned run refuses to go on. Each maps to a documented exit code through `CategorizedFailure`.
public enum PartitionError: Error, Equatable, CategorizedFailure, CustomStringConvertible {
    case configChanged(runId: String, planned: String, now: String)
    case parentMoved(runId: String, planned: String?, latest: String?)
    case incomplete(runId: String, missing: [Int], of: Int, pipeline: String)
    case historyChanged(runId: String)
    case invalidPartition(String)
    case unsupportedStore(String)

    public var category: FailureCategory {
        switch self {
        case .configChanged, .invalidPartition, .unsupportedStore: .config
        // Like a held lock: nothing is wrong with the input; the run is still going, or another run went first.
        case .parentMoved, .incomplete, .historyChanged: .locked
        }
    }

    public var isRetryable: Bool {
        if case .incomplete = self { return true }
        return false
    }

    public var failureMessage: String { description }

    public var description: String {
        switch self {
        case .configChanged(let runId, let planned, let now):
            "the pipeline file changed since run \(runId) was planned (config sha256 \(planned.prefix(12))…, now \(now.prefix(12))…); plan a new run"
        case .parentMoved(let runId, let planned, let latest):
            "run \(runId) was planned on \(planned ?? "no version") but the newest version is now \(latest ?? "none"); nothing was published, plan a new run"
        case .incomplete(let runId, let missing, let count, let pipeline):
            "run \(runId) is not complete: partition\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", ")) of \(count) "
                + "\(missing.count == 1 ? "has" : "have") not finished; nothing was published. Rerun "
                + missing.prefix(3).map { "`etl run \(pipeline) --run \(runId) --partition \($0)/\(count)`" }.joined(separator: ", ")
                + (missing.count > 3 ? ", …" : "") + " and commit again"
        case .historyChanged(let runId):
            "the versions run \(runId) re-reads below its parent's cursor changed since it was planned (etl gc or forget?); plan a new run"
        case .invalidPartition(let text):
            text
        case .unsupportedStore(let location):
            "\(location): this store cannot hold partitioned runs"
        }
    }
}
