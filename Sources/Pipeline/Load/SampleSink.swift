import Dataset
import Foundation
import MDS
import Postgres
import SystemIO

/// The load stage: takes processed rows in source order and writes them into the staged version — samples into one
/// MDS writer per split (`<split>/shard.<hash>.mds.zstd`), rejected rows into quarantine.jsonl — and keeps the
/// counts the manifest and the run events report.
final class SampleSink {
    private let staged: any StagedVersion
    private let columns: [MDSColumn]
    private let writerOptions: MDSWriterOptions
    private let listener: (RunEvent) -> Void
    private let quarantine: QuarantineFile
    /// Every (cursor, key) consumed, so a later run re-reading below this version's cursor skips them.
    private let rowsFile: PublishedRowsFile.Writer
    private var writers: [String: MDSWriter] = [:]
    /// Keyed by the key's text: comparing and keeping an `MDSValue?` cost ~1,800 instructions a row (outlined enum
    /// copies and destroys; callgrind), a string a fraction of that.
    private var duplicates = DuplicateKeyFilter<String?, PostgresValue>()
    /// Keys removed by `etl forget` (tombstones.json): skipped and counted, never written, not even to quarantine.
    private let tombstones: TombstoneFilter
    private var forgottenSkipped = 0
    /// Replace by key and dedupe by value against the parent lineage (source.change_column, dedupe:); nil otherwise.
    var lineage: LineageKeys?

    private(set) var progress = RunProgress()
    /// The cursor of the last row read (sample or quarantined): where the next run starts.
    private(set) var lastCursor: PostgresValue?

    /// Checkpoints: the run-level fields (the sink fills in the rest), how often, and where the last one was.
    private let checkpointTemplate: RunCheckpoint
    private let checkpointEvery: Int
    private var bytesAtCheckpoint = 0
    private var checkpointDue = false
    /// Shards sealed before this attempt (a resumed run), per split, and how many of each writer's entries are staged.
    private let resumedSealed: [String: [MDSShardEntry]]
    private var stagedCount: [String: Int] = [:]
    /// The cursor text of the checkpoint this attempt resumed from, if any.
    let resumedCursor: String?

    init(staged: any StagedVersion, columns: [MDSColumn], writerOptions: MDSWriterOptions, checkpoint: RunCheckpoint,
         checkpointEvery: Int, resuming resume: RunCheckpoint?, listener: @escaping (RunEvent) -> Void) throws(DatasetError) {
        self.staged = staged
        self.columns = columns
        self.writerOptions = writerOptions
        self.listener = listener
        checkpointTemplate = checkpoint
        self.checkpointEvery = checkpointEvery
        let directory = staged.workDirectory
        if let resume {
            quarantine = try QuarantineFile(directory: directory, resumingAt: resume.quarantineBytes, count: resume.quarantined,
                                            byReason: resume.quarantineByReason)
            do {
                rowsFile = try PublishedRowsFile.Writer(resuming: "\(directory)/\(PublishedRowsFile.fileName)",
                                                        length: resume.rowsFileBytes, count: resume.rowsFileCount)
            } catch { throw DatasetError(error) }
            // What the dead attempt wrote after its checkpoint (an unsealed shard, spool files) goes.
            for name in (try? FileSystem.contentsOfDirectory(directory)) ?? [] where FileSystem.isDirectory("\(directory)/\(name)") {
                let keep = Set((resume.sealed[name] ?? []).map(\.storedFile.basename))
                for file in (try? FileSystem.contentsOfDirectory("\(directory)/\(name)")) ?? [] where !keep.contains(file) {
                    FileSystem.removeIfPresent("\(directory)/\(name)/\(file)")
                }
            }
            resumedSealed = resume.sealed
            progress.rowsRead = resume.rowsRead
            progress.samplesWritten = resume.samplesWritten
            progress.quarantined = resume.quarantined
            progress.sourceBytes = resume.sourceBytes
            progress.alreadyPublished = resume.alreadyPublished
            progress.deduplicated = resume.deduplicated ?? 0
            progress.shardsSealed = resume.sealed.values.reduce(0) { $0 + $1.count }
            bytesAtCheckpoint = resume.sourceBytes
            resumedCursor = resume.cursor
        } else {
            quarantine = try QuarantineFile(directory: directory)
            do { rowsFile = try PublishedRowsFile.Writer(path: "\(directory)/\(PublishedRowsFile.fileName)") } catch {
                throw DatasetError(error)
            }
            resumedSealed = [:]
            resumedCursor = nil
        }
        tombstones = try TombstoneFilter.load(for: staged)
    }

    /// Counts rows of the re-read window that were dropped as already published before they were fetched.
    func skipPublished(_ count: Int) {
        progress.alreadyPublished += count
    }

    /// The pipeline's split names, in the order `EncodedRow.split` indexes them.
    var splitNames: [String] = []
    /// The writers of `splitNames`, by index (nil until the split's first sample).
    private var writersBySlot: [MDSWriter?] = []

    func consume(_ row: ProcessedRow) throws {
        guard let cursor = row.cursor else {
            progress.alreadyPublished += 1
            return
        }
        try startRow(cursor: cursor)
        defer { endRow() }
        switch row {
        case .alreadyPublished:
            break
        case .sample(let split, let values, let cursor, let bytes):
            let key = values[SamplePlan.keyColumnName]?.keyText
            guard try admit(key: key, cursor: cursor, sourceBytes: bytes) else { return }
            if let lineage, let key, lineage.isDuplicate(key: key, value: lineage.dedupeColumn.flatMap { values[$0] }) {
                progress.deduplicated += 1
                return
            }
            if let rejected = try write(values, to: try writer(for: split)) {
                try reject(rejected)
            } else {
                written(key: key, value: lineage?.dedupeColumn.flatMap { values[$0] }, split: split)
            }
        case .rejected(let entry, let cursor, let bytes):
            guard try account(key: entry.key, cursor: cursor, sourceBytes: bytes) else { return }
            try reject(entry)
        }
    }

    /// A batch from `DirectSampleEncoder`: each encoded sample goes through the same steps as a `.sample` row (its
    /// dedupe column, if any, would need its value: the direct encoder is not used with one), the rest as they were
    /// processed. Throws the batch's decoding failure after the rows before it.
    func consume(_ batch: EncodedSamples) throws {
        precondition(lineage?.dedupeColumn == nil, "the direct encoder does not keep a dedupe column's value")
        var processed = 0
        var sampleStart = 0
        try batch.bytes.withUnsafeBytes { (bytes) throws in
            for row in batch.rows {
                switch row.kind {
                case .alreadyPublished:
                    progress.alreadyPublished += 1
                case .processed:
                    try consume(batch.processed[processed])
                    processed += 1
                case .sample:
                    let sample = UnsafeRawBufferPointer(rebasing: bytes[sampleStart..<row.end])
                    sampleStart = row.end
                    try startRow(cursor: row.cursor)
                    defer { endRow() }
                    guard try admit(key: row.key, cursor: row.cursor, sourceBytes: row.sourceBytes) else { continue }
                    let split = splitNames[row.split]
                    let writer = try writer(forSlot: row.split, named: split)
                    do throws(ShardError) { try writer.write(encodedSample: sample) } catch {
                        guard error.isSampleError else { throw error }
                        try reject(QuarantineEntry(sampleError: error, key: .string(row.key)))
                        continue
                    }
                    written(key: row.key, value: nil, split: split)
                }
            }
        }
        if let failure = batch.failure { throw failure }
    }

    /// Before a row that consumes a cursor value: a checkpoint falls at the first change of cursor value after enough
    /// bytes, so rows sharing a cursor value are never split between two attempts (a resumed run reads strictly after
    /// the checkpoint's cursor).
    private func startRow(cursor: PostgresValue) throws {
        if checkpointDue, cursor != lastCursor { try writeCheckpoint() }
        progress.rowsRead += 1
    }

    private func endRow() {
        if progress.sourceBytes - bytesAtCheckpoint >= checkpointEvery { checkpointDue = true }
    }

    /// What every consumed row (sample or rejected) counts for: its bytes, its cursor, and its line in rows.bin; false
    /// when its key was forgotten, which leaves no trace in the new version, not even in rows.bin.
    private func account(key: String?, cursor: PostgresValue, sourceBytes: Int) throws -> Bool {
        progress.sourceBytes += sourceBytes
        lastCursor = cursor
        if let key, tombstones.isForgotten(key) {
            forgottenSkipped += 1
            return false
        }
        try record(cursor, key: key)
        return true
    }

    /// The steps every sample goes through before it is written; false when it is not to be written: its key was
    /// forgotten (no trace at all), or it repeats the row before (quarantined).
    private func admit(key: String?, cursor: PostgresValue, sourceBytes: Int) throws -> Bool {
        guard try account(key: key, cursor: cursor, sourceBytes: sourceBytes) else { return false }
        if duplicates.isRepeat(key: key, cursor: cursor) {
            try reject(QuarantineEntry(
                key: key, reason: .duplicateKey,
                message: "the query returned key \(key ?? "?") more than once (a join that fans out?); the first row was kept",
                column: nil))
            return false
        }
        return true
    }

    private func written(key: String?, value: MDSValue?, split: String) {
        progress.samplesWritten += 1
        if let lineage, let key { lineage.recordWritten(key: key, value: value, split: split) }
        TestHooks.pause(at: .shardWrite)
    }

    /// Seals every split's last shard and stages every shard and the quarantine file. Returns the sealed shards per
    /// split, in the order they were written.
    func finish() throws -> (sealed: [String: [MDSShardEntry]], quarantine: DatasetManifest.QuarantineSummary) {
        if forgottenSkipped > 0 { listener(.notice("skipped \(forgottenSkipped) rows whose key was forgotten (tombstones.json)")) }
        // A last checkpoint covers every row: a run killed from here to the commit resumes without fetching any again.
        if lastCursor != nil { try writeCheckpoint() }
        var sealed = resumedSealed
        for split in writers.keys.sorted() {
            let entries = try writers[split]!.finish()
            try stageNew(entries, split: split)
            sealed[split, default: []] += entries
        }
        do { try rowsFile.close() } catch { throw DatasetError(error) }
        try staged.stage(PublishedRowsFile.fileName)
        try quarantine.close()
        if quarantine.count > 0 {
            try staged.stage(QuarantineFile.fileName)
        } else {
            try? FileManager.default.removeItem(atPath: quarantine.path)
        }
        return (sealed, .init(count: quarantine.count, byReason: quarantine.byReason,
                              file: quarantine.count > 0 ? QuarantineFile.fileName : nil))
    }

    /// Seals every open shard, waits until all are on disk, and records the checkpoint (see RunCheckpoint).
    private func writeCheckpoint() throws {
        checkpointDue = false
        bytesAtCheckpoint = progress.sourceBytes
        var sealed = resumedSealed
        for split in writers.keys.sorted() {
            let entries = try writers[split]!.seal()
            try stageNew(entries, split: split)
            sealed[split, default: []] += entries
        }
        var checkpoint = checkpointTemplate
        checkpoint.cursor = lastCursor?.textForParameter ?? resumedCursor ?? ""
        checkpoint.rowsRead = progress.rowsRead
        checkpoint.samplesWritten = progress.samplesWritten
        checkpoint.quarantined = progress.quarantined
        checkpoint.sourceBytes = progress.sourceBytes
        checkpoint.alreadyPublished = progress.alreadyPublished
        checkpoint.deduplicated = progress.deduplicated > 0 ? progress.deduplicated : nil
        checkpoint.sealed = sealed
        checkpoint.quarantineBytes = try quarantine.checkpoint()
        checkpoint.quarantineByReason = quarantine.byReason
        do {
            checkpoint.rowsFileBytes = try rowsFile.checkpoint()
        } catch { throw DatasetError(error) }
        checkpoint.rowsFileCount = rowsFile.count
        try checkpoint.write(directory: staged.workDirectory)
        TestHooks.pause(at: .afterCheckpoint)
    }

    /// Stages the entries of a writer not staged yet, with their events.
    private func stageNew(_ entries: [MDSShardEntry], split: String) throws {
        for entry in entries.dropFirst(stagedCount[split] ?? 0) {
            try staged.stage("\(split)/\(entry.storedFile.basename)")
            progress.shardsSealed += 1
            listener(.shardSealed(split: split, basename: entry.storedFile.basename, samples: entry.samples, bytes: entry.storedFile.bytes))
        }
        stagedCount[split] = entries.count
    }

    private func record(_ cursor: PostgresValue, key: String?) throws {
        guard let point = CursorPoint(cursor) else { return }
        do { try rowsFile.append(PublishedRow(cursor: point, key: key)) } catch { throw DatasetError(error) }
    }

    private func writer(forSlot slot: Int, named split: String) throws -> MDSWriter {
        if slot < writersBySlot.count, let writer = writersBySlot[slot] { return writer }
        let writer = try writer(for: split)
        if writersBySlot.count <= slot { writersBySlot += Array(repeating: nil, count: slot + 1 - writersBySlot.count) }
        writersBySlot[slot] = writer
        return writer
    }

    private func writer(for split: String) throws -> MDSWriter {
        if let writer = writers[split] { return writer }
        let writer = try MDSWriter(
            directory: URL(fileURLWithPath: "\(staged.workDirectory)/\(split)", isDirectory: true), columns: columns, options: writerOptions)
        writers[split] = writer
        return writer
    }

    private func reject(_ entry: QuarantineEntry) throws {
        try quarantine.append(entry)
        progress.quarantined += 1
        listener(.quarantined(entry))
    }

    /// Writes one sample; a value the encoding cannot hold (e.g. a float32 overflow) leaves the writer unchanged
    /// and comes back as a quarantine entry, like any other bad row. I/O failures end the run.
    private func write(_ values: SampleValues, to writer: MDSWriter) throws(ShardError) -> QuarantineEntry? {
        do {
            try writer.write(values)
            return nil
        } catch {
            guard error.isSampleError else { throw error }
            return QuarantineEntry(sampleError: error, key: values[SamplePlan.keyColumnName])
        }
    }
}

extension ProcessedRow {
    var cursor: PostgresValue? {
        switch self {
        case .sample(_, _, let cursor, _), .rejected(_, let cursor, _): cursor
        case .alreadyPublished: nil
        }
    }
}

extension QuarantineEntry {
    init(sampleError error: ShardError, key: MDSValue?) {
        self.init(key: key?.keyText, reason: QuarantineReason(sampleError: error.code), message: error.message, column: error.column)
    }
}

extension MDSValue {
    /// The text of a `__key__` value.
    var keyText: String? {
        if case .string(let text) = self { return text }
        return nil
    }
}
