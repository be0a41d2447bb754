import Foundation
import Testing
@testable import Postgres

/// Prints how fast single-row streaming moves data compared with psql's binary COPY of the same query; asserts
/// only correctness, since timings on a shared machine are noise. ETL_PG_BENCH_MB sets the volume (default 20).
@Suite(needsDatabase)
struct ThroughputTests {
    @Test func singleRowModeVersusBinaryCopy() throws {
        let megabytes = Int(TestDatabase.environment["ETL_PG_BENCH_MB"] ?? "") ?? 20
        let rowBytes = 1024 * 1024
        try TestDatabase.withSchema { connection, schema in
            // EXTERNAL storage: no TOAST compression, so the bytes read are the bytes sent.
            try connection.execute("CREATE TABLE \(schema).blobs (id int4, data bytea)")
            try connection.execute("ALTER TABLE \(schema).blobs ALTER COLUMN data SET STORAGE EXTERNAL")
            try connection.execute("""
                INSERT INTO \(schema).blobs
                SELECT i, decode(repeat(lpad(to_hex(i % 256), 2, '0'), $1::int4), 'hex') FROM generate_series(1, $2::int4) i
                """, [String(rowBytes), String(megabytes)])
            let select = "SELECT id, data FROM \(schema).blobs"

            // Warm the buffer cache so both measurements read from memory.
            _ = try connection.query("SELECT sum(length(data))::int8 AS n FROM \(schema).blobs")

            let rssBefore = residentMegabytes()
            var peakRSS = rssBefore
            var total = 0
            let streamTime = try measure {
                try connection.stream(select) { row in
                    guard case .bytea(let data) = row.values[1] else { throw StopStreaming() }
                    total += data.count
                    peakRSS = max(peakRSS, residentMegabytes())
                }
            }
            #expect(total == megabytes * rowBytes)

            let copyTime = try measure { try runPsql("COPY (\(select)) TO STDOUT (FORMAT binary)") }

            var smallRows = 0
            let smallSQL = "SELECT g::int8 AS id, md5(g::text) AS label, now() AS at FROM generate_series(1, 500000) g"
            let smallStreamTime = try measure { try connection.stream(smallSQL) { _ in smallRows += 1 } }
            let smallCopyTime = try measure { try runPsql("COPY (\(smallSQL)) TO STDOUT (FORMAT binary)") }
            #expect(smallRows == 500_000)

            func rate(_ seconds: Double) -> String { String(format: "%.0f MB/s", Double(megabytes) / seconds) }
            print("""
                [throughput] \(megabytes) MB of bytea in 1 MB rows:
                [throughput]   stream (single-row, binary): \(String(format: "%.2f", streamTime)) s = \(rate(streamTime)); \
                RSS \(rssBefore) MB before, \(peakRSS) MB peak
                [throughput]   psql COPY binary > /dev/null: \(String(format: "%.2f", copyTime)) s = \(rate(copyTime))
                [throughput] 500k small rows (int8, text, timestamptz):
                [throughput]   stream: \(String(format: "%.2f", smallStreamTime)) s = \(Int(500_000 / smallStreamTime)) rows/s
                [throughput]   psql COPY binary: \(String(format: "%.2f", smallCopyTime)) s = \(Int(500_000 / smallCopyTime)) rows/s
                """)
        }
    }

    private func measure(_ body: () throws -> Void) throws -> Double {
        let started = ContinuousClock.now
        try body()
        let elapsed = ContinuousClock.now - started
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    private func runPsql(_ sql: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    private func residentMegabytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        else { return 0 }
        return kilobytes / 1024
    }
}
