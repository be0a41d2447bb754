import Postgres

/// What the extract thread hands to a transform worker: decoded rows, or undecoded COPY rows for the direct encoder.
/// A batch is the unit of work between threads: hundreds of small rows, or one large one.
enum SourceBatch: Sendable {
    case rows([PostgresRow])
    case copy(CopyRowBatch)

    var count: Int {
        switch self {
        case .rows(let rows): rows.count
        case .copy(let batch): batch.count
        }
    }
}

/// What a worker made of one `SourceBatch`, in source order.
enum SampleBatch: Sendable {
    case processed([ProcessedRow], fetchedBytes: Int)
    case encoded(EncodedSamples)

    /// The approximate decoded size of every row of the batch, for the run's figures.
    var fetchedBytes: Int {
        switch self {
        case .processed(_, let bytes): bytes
        case .encoded(let samples): samples.fetchedBytes
        }
    }
}

/// The transform stage's work on one batch: the direct encoder for COPY rows when the pipeline's columns allow it
/// (see `DirectSampleEncoder`), the row processor otherwise. Shared read-only by the workers.
struct BatchTransform: Sendable {
    let processor: RowProcessor
    /// nil when some column needs the row path (media, label maps), or to compare both paths in tests.
    let encoder: DirectSampleEncoder?
    /// The re-read window's published rows: rows it holds are not transformed again (one may be a clip to decode).
    let window: PublishedWindow?

    /// Whether the extract thread should hand over COPY rows undecoded.
    var wantsCopyRows: Bool { encoder != nil }

    func callAsFunction(_ batch: SourceBatch) -> SampleBatch {
        switch batch {
        case .copy(let rows):
            guard let encoder else { preconditionFailure("COPY rows are asked for only with a direct encoder") }
            return .encoded(encoder.encode(rows, window: window))
        case .rows(let rows):
            var fetchedBytes = 0
            var processed: [ProcessedRow] = []
            processed.reserveCapacity(rows.count)
            for row in rows {
                fetchedBytes += row.values.reduce(0) { $0 + $1.approximateSize }
                processed.append(processor.process(row, window: window))
            }
            return .processed(processed, fetchedBytes: fetchedBytes)
        }
    }
}
