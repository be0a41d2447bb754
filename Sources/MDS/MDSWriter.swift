import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes samples into MDS shards in one directory, byte-compatible with mosaicml-streaming's `MDSWriter`.
///
/// Memory stays bounded whatever the shard size: each encoded sample is appended to a temporary spool file in
/// the output directory and only its length is kept; when a shard closes, header, config JSON and spooled
/// samples stream through zstd (or straight) into `shard.NNNNN.mds[.zstd]`, hashed on the way, in 1 MiB
/// chunks. Shard files appear only complete (temporary name, fsync, rename).
///
/// Differences from mosaicml, all invisible to its reader:
/// - mosaicml writes an empty shard (0 samples) when the very first sample exceeds the size limit; we don't.
/// - We refuse sample keys that are not columns (mosaicml ignores them) and finite floats that overflow their
///   encoding (NumPy stores infinity).
/// - We accept ndarrays with zero elements in variable-shape columns (mosaicml's writer refuses them; its
///   reader decodes them fine).
/// - `finish()` returns the shard entries instead of writing index.json: a dataset version also lists shards
///   reused from its parent, so the caller assembles the index (`MDSIndex.write(to:)`).
///
/// Not thread-safe; use one writer per split from one thread at a time.
public final class MDSWriter {
    /// Prefix of every temporary file a writer (or `MDSIndex.write`) creates. Anything with this prefix left
    /// in a dataset directory comes from a process that died mid-write and can be deleted.
    public static let temporaryPrefix = ".mds-tmp-"

    static func temporaryName(for basename: String) -> String {
        let random = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return "\(temporaryPrefix)\(getpid())-\(random)-\(basename)"
    }

    /// Chunk size for streaming shards and for buffering spool writes; bounds the writer's own memory.
    static let chunkSize = 1 << 20

    public let directory: URL
    /// Sorted by name in code point order, as mosaicml stores them.
    public let columns: [MDSColumn]
    public let options: MDSWriterOptions
    public private(set) var samplesWritten = 0

    private let codec: MDSSampleCodec
    private let hashes: [MDSHashAlgorithm]
    /// The JSON between the offsets and the samples of every shard, byte for byte what mosaicml writes.
    private let configJSON: [UInt8]
    private let compressor: ZstdCompressor?

    private var spool: MDSFile
    private var spoolLength = 0
    private var spoolBuffer: [UInt8] = []
    private var sampleBuffer: [UInt8] = []
    /// The large values of the sample being written that bypass `sampleBuffer`.
    private var deferredValues: [MDSSampleCodec.DeferredValue] = []

    private var shardSampleSizes: [UInt32] = []
    /// mosaicml's running size of the open shard: header, config, and per sample its bytes plus its u32
    /// offset. It equals the raw shard's final size exactly.
    private var shardSize: Int
    private var nextShardIndex: Int
    private var entries: [MDSShardEntry] = []
    /// Shards being written out in the background, oldest first; at most `concurrentFinalizations`.
    private var finalizing: [ShardFinalization] = []
    /// Compressors no finalization is using. Each shard in flight owns one (a ZSTD_CCtx serves one frame at a
    /// time); the first is `compressor`, more are made on demand, up to `concurrentFinalizations`.
    private lazy var idleCompressors: [ZstdCompressor] = compressor.map { [$0] } ?? []

    /// Two shards may be compressed, hashed and synced at once. zstd is most of a shard's cost, and with one
    /// finalizer it was the slowest stage of a small-row run (a single thread compressing behind every other
    /// stage, and alone for the last shard); two spread it over the cores. Memory stays bounded: per shard in
    /// flight, one spool file on disk, a compressor and two 1 MiB buffers.
    static let concurrentFinalizations = 2

    private enum State {
        case open
        case finished
        case failed(ShardError)
    }
    private var state = State.open

    /// Creates `directory` if needed. `columns` may come in any order; names must be unique and non-empty.
    /// Shards are numbered from `firstShardIndex` (a new dataset version continues its parent's numbering).
    public init(
        directory: URL, columns: [MDSColumn], options: MDSWriterOptions = MDSWriterOptions(), firstShardIndex: Int = 0
    ) throws(ShardError) {
        try options.validate()
        guard !columns.isEmpty else { throw ShardError(.invalidConfiguration, "an MDS dataset needs at least one column") }
        var seen = Set<String>()
        for column in columns {
            guard !column.name.isEmpty else { throw ShardError(.invalidConfiguration, "column names must not be empty") }
            guard seen.insert(column.name).inserted else {
                throw ShardError(.invalidConfiguration, column: column.name, "column '\(column.name)' is listed twice")
            }
            if let reason = column.encoding.invalidReason {
                throw ShardError(.invalidEncoding, column: column.name, "column '\(column.name)': \(reason)")
            }
        }
        guard firstShardIndex >= 0 else {
            throw ShardError(.invalidConfiguration, "first shard index \(firstShardIndex) is negative")
        }

        let sorted = columns.sorted { String.codePointPrecedes($0.name, $1.name) }
        self.directory = directory
        self.columns = sorted
        self.options = options
        codec = MDSSampleCodec(sortedColumns: sorted)
        hashes = options.sortedHashes
        configJSON = PythonJSON.object([
            "column_encodings": .array(sorted.map { .string($0.encoding.name) }),
            "column_names": .array(sorted.map { .string($0.name) }),
            "column_sizes": .array(sorted.map { $0.encoding.fixedSize.map { .int($0) } ?? .null }),
            "compression": options.compressionName.map { .string($0) } ?? .null,
            "format": .string("mds"),
            "hashes": .array(options.sortedHashes.map { .string($0.rawValue) }),
            "size_limit": .int(options.sizeLimit),
            "version": .int(2),
        ]).bytes
        shardSize = 8 + configJSON.count
        nextShardIndex = firstShardIndex
        compressor = try options.zstdLevel.map { (level) throws(ShardError) in
            try ZstdCompressor(level: level, path: directory.path)
        }
        try MDSFile.createDirectory(directory.path)
        spool = try MDSFile.createExclusive(
            directory.appendingPathComponent(Self.temporaryName(for: "samples")).path, role: "temporary sample file",
            readable: true)
    }

    deinit {
        // A shard still being written out must be done before the caller may discard the directory.
        for finalization in finalizing { finalization.done.wait() }
        if case .finished = state { return }
        // An abandoned writer leaves no shard half-written; the spool goes (its descriptor closes with it).
        MDSFile.removeIfPresent(spool.path)
    }

    /// Encodes and appends one sample, first closing the open shard if this sample would push it past the size
    /// limit. Errors with `isSampleError` leave the writer as it was (skip or quarantine the sample and go
    /// on); any other error (I/O) is final and every later call repeats it.
    public func write(_ sample: [String: MDSValue]) throws(ShardError) {
        try checkOpen()
        try write(orderedValues: try codec.ordered(sample))
    }

    /// `write(_:)` with the values in `columns` order (code point order of the names), one per column: what a
    /// producer that knows its columns up front uses, so no dictionary is built and hashed per sample.
    ///
    /// A bytes value of `chunkSize` or more is not copied into the sample's buffer: it goes from its own memory straight
    /// to the spool file, between the encoded parts before and after it (the same bytes in the same order).
    public func write(orderedValues values: [MDSValue]) throws(ShardError) {
        try checkOpen()
        sampleBuffer.removeAll(keepingCapacity: true)
        deferredValues.removeAll(keepingCapacity: true)
        try codec.encode(ordered: values, into: &sampleBuffer, deferring: &deferredValues, atLeast: Self.chunkSize)
        var sampleSize = sampleBuffer.count
        for deferred in deferredValues {
            sampleSize += MDSSampleCodec.bytesCount(values[deferred.index], as: columns[deferred.index].encoding)!
        }
        try append(sampleOf: sampleSize) { () throws(ShardError) in
            var encodedFrom = 0
            for deferred in deferredValues {
                try appendToSpool(sampleBuffer[encodedFrom..<deferred.offset])
                try appendLargeToSpool(values[deferred.index])
                encodedFrom = deferred.offset
            }
            try appendToSpool(sampleBuffer[encodedFrom...])
        }
        // One huge sample must not pin its buffer for the rest of the run.
        if sampleBuffer.capacity > 8 * Self.chunkSize { sampleBuffer = [] }
    }

    /// Appends one sample already encoded in this writer's layout (`MDSSampleBuilder` with these columns): what
    /// `write(orderedValues:)` does after encoding, for a producer that encodes on another thread, straight from its
    /// source's bytes.
    public func write(encodedSample sample: UnsafeRawBufferPointer) throws(ShardError) {
        try checkOpen()
        try append(sampleOf: sample.count) { () throws(ShardError) in try appendToSpool(sample) }
    }

    /// Adds a sample of `sampleSize` bytes to the open shard, which `spool` appends to the spool file, first closing
    /// the shard if the sample would take it past the size limit. A failure here is final for the writer.
    private func append(sampleOf sampleSize: Int, spool: () throws(ShardError) -> Void) throws(ShardError) {
        let cost = sampleSize + 4
        guard 8 + configJSON.count + cost <= Int(UInt32.max) else {
            throw ShardError(
                .sampleTooLarge,
                "sample is \(sampleSize) bytes encoded; with the shard header it exceeds the 4 GiB an MDS shard can address")
        }
        do throws(ShardError) {
            if !shardSampleSizes.isEmpty && options.sizeLimit < shardSize + cost {
                try closeShard()
            }
            try spool()
        } catch {
            state = .failed(error)
            throw error
        }
        shardSampleSizes.append(UInt32(sampleSize))
        shardSize += cost
        samplesWritten += 1
    }

    /// Closes the last shard, removes the spool and returns the entries of the shards this writer wrote, in
    /// order. Writes no index.json (see the type's documentation).
    public func finish() throws(ShardError) -> [MDSShardEntry] {
        try checkOpen()
        do throws(ShardError) {
            if !shardSampleSizes.isEmpty { try closeShard() }
            try collectFinalizedShard()
            try spool.close()
            MDSFile.removeIfPresent(spool.path)
        } catch {
            state = .failed(error)
            throw error
        }
        state = .finished
        return entries
    }

    /// Entries of the shards closed so far.
    public var shardsWritten: [MDSShardEntry] { entries }

    /// Closes the open shard (if it holds a sample) and waits until every shard closed so far is on disk; returns
    /// their entries, in order. The writer stays open: a run checkpoints this way, so that a run that dies later can
    /// resume from a point where every shard it wrote is complete.
    public func seal() throws(ShardError) -> [MDSShardEntry] {
        try checkOpen()
        do throws(ShardError) {
            if !shardSampleSizes.isEmpty { try closeShard() }
            try collectFinalizedShard()
        } catch {
            state = .failed(error)
            throw error
        }
        return entries
    }

    private func checkOpen() throws(ShardError) {
        switch state {
        case .open: return
        case .finished:
            throw ShardError(.writerClosed, path: directory.path, "MDS writer for \(directory.path) is already finished")
        case .failed(let error):
            throw ShardError(
                .writerClosed, path: error.path ?? directory.path,
                "MDS writer for \(directory.path) stopped after an earlier error: \(error.message)")
        }
    }

    private func appendToSpool(_ bytes: ArraySlice<UInt8>) throws(ShardError) {
        try bytes.withUnsafeBytes { raw in Result { () throws(ShardError) in try appendToSpool(raw) } }.get()
    }

    private func appendToSpool(_ bytes: UnsafeRawBufferPointer) throws(ShardError) {
        if spoolBuffer.count + bytes.count > Self.chunkSize { try flushSpool() }
        if bytes.count >= Self.chunkSize {
            try spool.write(bytes, at: spoolLength)
            spoolLength += bytes.count
        } else {
            spoolBuffer.append(contentsOf: bytes)
        }
    }

    /// Appends a value `encode(ordered:into:deferring:atLeast:)` left out, from the value's own memory.
    private func appendLargeToSpool(_ value: MDSValue) throws(ShardError) {
        try flushSpool()
        switch value {
        case .bytes(let bytes):
            try bytes.withBytes { (raw) throws(ShardError) in try spool.write(raw, at: spoolLength) }
            spoolLength += bytes.count
        case .borrowedBytes(let bytes):
            try bytes.withBytes { (raw) throws(ShardError) in try spool.write(raw, at: spoolLength) }
            spoolLength += bytes.count
        default:
            preconditionFailure("only bytes values are deferred")
        }
    }

    private func flushSpool() throws(ShardError) {
        guard !spoolBuffer.isEmpty else { return }
        try spoolBuffer.withBytes { (raw) throws(ShardError) in try spool.write(raw, at: spoolLength) }
        spoolLength += spoolBuffer.count
        spoolBuffer.removeAll(keepingCapacity: true)
    }

    /// Hands the open shard to a background finalizer and starts a new spool, so compressing, hashing and
    /// syncing a shard overlaps with extracting and encoding the next. At most `concurrentFinalizations` shards
    /// are being finalized at a time (memory and disk use stay bounded); when that many are, the oldest's entry, or
    /// its error, is collected first. Entries are collected in shard order.
    private func closeShard() throws(ShardError) {
        try flushSpool()
        if finalizing.count >= Self.concurrentFinalizations { try collectOldestFinalizedShard() }
        let shardCompressor = try takeCompressor()
        let rawName = "shard.\(Self.zeroPadded(nextShardIndex)).mds"
        let storedName = compressor == nil ? rawName : rawName + ".zstd"
        var closing = try MDSFile.createExclusive(
            directory.appendingPathComponent(Self.temporaryName(for: "samples")).path, role: "temporary sample file",
            readable: true)
        swap(&spool, &closing)
        let job = ClosedShard(
            spool: closing, spoolLength: spoolLength, sampleSizes: shardSampleSizes, shardSize: shardSize,
            rawName: rawName, storedName: storedName, naming: options.naming, directory: directory, configJSON: configJSON,
            compressor: shardCompressor, hashes: hashes, columns: columns, options: options)
        let finalization = ShardFinalization(compressor: shardCompressor)
        finalizing.append(finalization)
        Self.finalizerQueue.async {
            finalization.result = Result { () throws(ShardError) in try job.write() }
            finalization.done.signal()
        }
        nextShardIndex += 1
        shardSampleSizes.removeAll(keepingCapacity: true)
        shardSize = 8 + configJSON.count
        spoolLength = 0
    }

    /// Waits for every shard being finalized and records their entries in order (or rethrows the first failure).
    private func collectFinalizedShard() throws(ShardError) {
        while !finalizing.isEmpty { try collectOldestFinalizedShard() }
    }

    /// Waits for the oldest shard being finalized, takes back its compressor and records its entry.
    private func collectOldestFinalizedShard() throws(ShardError) {
        let finalization = finalizing.removeFirst()
        finalization.done.wait()
        if let used = finalization.compressor { idleCompressors.append(used) }
        switch finalization.result! {
        case .success(let entry): entries.append(entry)
        case .failure(let error): throw error
        }
    }

    /// A compressor no shard in flight uses, or nil when shards are stored uncompressed.
    private func takeCompressor() throws(ShardError) -> ZstdCompressor? {
        guard let level = options.zstdLevel, compressor != nil else { return nil }
        if let idle = idleCompressors.popLast() { return idle }
        return try ZstdCompressor(level: level, path: directory.path)
    }

    /// Finalization runs on threads of its own, never Swift's cooperative pool: it blocks on disk and zstd.
    private static let finalizerQueue = DispatchQueue(label: "etl.mds.finalize", qos: .userInitiated, attributes: .concurrent)

    /// Python's f'{index:05}': at least five digits.
    static func zeroPadded(_ index: Int) -> String {
        let digits = String(index)
        return digits.count >= 5 ? digits : String(repeating: "0", count: 5 - digits.count) + digits
    }
}

/// A shard whose samples are complete, waiting to be written out. Owns its spool file, and the compressor it is
/// given until the writer collects it (no other shard uses that compressor meanwhile).
private final class ClosedShard: @unchecked Sendable {
    private var spool: MDSFile
    private let spoolLength: Int
    private let sampleSizes: [UInt32]
    private let shardSize: Int
    private let rawName: String
    private let storedName: String
    private let naming: MDSShardNaming
    private let directory: URL
    private let configJSON: [UInt8]
    private let compressor: ZstdCompressor?
    private let hashes: [MDSHashAlgorithm]
    private let columns: [MDSColumn]
    private let options: MDSWriterOptions

    init(spool: consuming MDSFile, spoolLength: Int, sampleSizes: [UInt32], shardSize: Int, rawName: String,
         storedName: String, naming: MDSShardNaming, directory: URL, configJSON: [UInt8], compressor: ZstdCompressor?,
         hashes: [MDSHashAlgorithm], columns: [MDSColumn], options: MDSWriterOptions) {
        self.spool = spool
        self.spoolLength = spoolLength
        self.sampleSizes = sampleSizes
        self.shardSize = shardSize
        self.rawName = rawName
        self.storedName = storedName
        self.naming = naming
        self.directory = directory
        self.configJSON = configJSON
        self.compressor = compressor
        self.hashes = hashes
        self.columns = columns
        self.options = options
    }

    deinit {
        MDSFile.removeIfPresent(spool.path)
    }

    /// How much of the raw shard behind the compressor's position stays mapped in: more than zstd's window at the
    /// usual levels (2 MiB at 3). Reaching further back is still correct (pages map in again), only slower.
    static let residentBehind = 8 << 20

    /// Streams the shard into its file and returns its entry. Layout: u32 sample count, u32 offsets (count + 1,
    /// absolute from file start, the last one = file size), config JSON, samples.
    func write() throws(ShardError) -> MDSShardEntry {
        // Removed before the writer hears back, so an abandoned writer leaves nothing behind.
        defer { MDSFile.removeIfPresent(spool.path) }
        var rawName = self.rawName, storedName = self.storedName
        var finalPath = directory.appendingPathComponent(storedName).path
        let temporaryPath = directory.appendingPathComponent(MDSWriter.temporaryName(for: storedName)).path
        let count = sampleSizes.count
        let headerLength = 4 * (count + 2) + configJSON.count
        precondition(headerLength + spoolLength == shardSize, "MDS writer lost track of the shard size")

        let result: MDSShardSink.Result
        do throws(ShardError) {
            let file = try MDSFile.createExclusive(temporaryPath, role: "shard")
            // The raw shard at one address: the header, written here, right in front of the spooled samples, which are
            // mapped, not copied. zstd reads it in place; pages it is done with are given back as it goes, so what stays
            // resident is about its window, not the shard.
            var mapping = try spool.mapped(length: spoolLength, prefixLength: headerLength)
            let header = mapping.prefix
            header.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 0, as: UInt32.self)
            var offset = UInt32(headerLength)
            header.storeBytes(of: offset.littleEndian, toByteOffset: 4, as: UInt32.self)
            for (index, size) in sampleSizes.enumerated() {
                offset += size
                header.storeBytes(of: offset.littleEndian, toByteOffset: 8 + 4 * index, as: UInt32.self)
            }
            configJSON.withUnsafeBytes { json in
                UnsafeMutableRawBufferPointer(rebasing: header[(4 * (count + 2))...]).copyMemory(from: json)
            }
            let content = mapping.bytes
            // A compressed shard's raw bytes are hashed on another thread, a megabyte at a time beside zstd compressing
            // the same megabyte: for a shard that closes at the end of a run (a large value's), hashing and compressing
            // one after the other was most of the wait. In step, so that neither runs ahead over pages the other has
            // not given back yet.
            var sink = try MDSShardSink(file: file, compressor: compressor, hashes: hashes, content: content,
                                        hashingRaw: compressor == nil)
            let rawHasher = compressor == nil ? nil : RawHasher(hashes)
            defer {
                rawHasher?.stop()  // it reads the mapping, which goes with this scope: not before this
                _ = mapping.length
            }
            var position = 0
            while position < content.count {
                let next = min(position + MDSWriter.chunkSize, content.count)
                rawHasher?.start(UnsafeRawBufferPointer(rebasing: content[position..<next]))
                try sink.write(upTo: next)
                rawHasher?.waitIdle()
                position = next
                mapping.release(below: position - Self.residentBehind)
            }
            var finished = try sink.finish()
            if let rawHasher { finished.rawHashes = rawHasher.digests() }
            result = finished
            // Everything is written: the whole mapping can go (and it stays alive until here, past zstd's last read).
            mapping.release(below: content.count)
            if naming == .contentAddressed, let digest = result.storedHashes["sha256"] {
                rawName = "shard.\(digest.prefix(MDSShardNaming.hashDigits)).mds"
                storedName = compressor == nil ? rawName : rawName + ".zstd"
                finalPath = directory.appendingPathComponent(storedName).path
            }
            try MDSFile.rename(temporaryPath, to: finalPath, role: "shard")
        } catch {
            MDSFile.removeIfPresent(temporaryPath)
            // The temporary name means nothing to a user; the shard it was going to become does.
            guard error.path == temporaryPath else { throw error }
            throw ShardError(
                error.code, path: finalPath, column: error.column, errno: error.errno,
                error.message.replacingOccurrences(of: temporaryPath, with: finalPath))
        }
        try MDSFile.syncDirectory(directory.path)

        let rawInfo = MDSFileInfo(basename: rawName, bytes: result.rawBytes, hashes: result.rawHashes)
        let zipInfo = compressor == nil
            ? nil : MDSFileInfo(basename: storedName, bytes: result.storedBytes, hashes: result.storedHashes)
        return MDSShardEntry(
            columnEncodings: columns.map(\.encoding.name), columnNames: columns.map(\.name),
            columnSizes: columns.map(\.encoding.fixedSize), compression: options.compressionName,
            hashes: hashes.map(\.rawValue), rawData: rawInfo, samples: count, sizeLimit: options.sizeLimit,
            zipData: zipInfo)
    }
}

/// Hashes a shard's raw bytes piece by piece on a thread of its own: `start` hands over the next piece, `waitIdle` waits
/// until it is hashed (a piece must stay in place until then), `stop` ends the thread. Its own thread, not a work item on Dispatch's pool: the
/// finalizers that wait for it run on that pool, which on a 2-core machine has no thread left to run it.
private final class RawHasher: @unchecked Sendable {
    private var accumulator: HashAccumulator
    private let work = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private var piece: (address: UInt, count: Int)?
    private var busy = false

    init(_ hashes: [MDSHashAlgorithm]) {
        accumulator = HashAccumulator(hashes)
        let thread = Thread { [self] in
            while true {
                work.wait()
                guard let (address, count) = piece else { return }  // no piece: the shard is done
                accumulator.update(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: address), count: count))
                done.signal()
            }
        }
        thread.name = "etl-shard-hash"
        thread.start()
    }

    /// Waits for the piece in hand, if any, and ends the thread. Call once, last.
    func stop() {
        waitIdle()
        piece = nil
        work.signal()
    }

    func start(_ bytes: UnsafeRawBufferPointer) {
        precondition(!busy, "one piece at a time")
        busy = true
        // The address as an integer: the caller keeps the piece in place until `waitIdle` returns.
        piece = (UInt(bitPattern: bytes.baseAddress), bytes.count)
        work.signal()
    }

    func waitIdle() {
        guard busy else { return }
        done.wait()
        busy = false
    }

    func digests() -> [String: String] {
        waitIdle()
        return accumulator.hexDigests()
    }
}

/// The outcome of one background finalization, handed back to the writer's thread.
private final class ShardFinalization: @unchecked Sendable {
    let done = DispatchSemaphore(value: 0)
    var result: Result<MDSShardEntry, ShardError>?
    /// The compressor this shard uses until it is collected.
    let compressor: ZstdCompressor?

    init(compressor: ZstdCompressor?) { self.compressor = compressor }
}
