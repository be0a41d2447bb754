import Foundation
import Logging

/// A swift-log handler that writes one JSON object per line: `{"ts", "level", "event", …metadata}`, keys sorted, for
/// log shippers (journald → Loki, Kubernetes → Fluent Bit) that parse a line without knowing etl. The message is the
/// event name (`run.started`, `run.finished`…); everything else is metadata, flattened to the top level. Numbers and
/// booleans given as `.stringConvertible` stay JSON numbers and booleans.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    private let write: @Sendable (String) -> Void
    private let clock: @Sendable () -> Date

    /// `write` receives each line with its newline (stderr in the CLI); `clock` is for tests.
    public init(write: @escaping @Sendable (String) -> Void, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.write = write
        self.clock = clock
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        write(Self.line(ts: clock(), level: event.level, event: event.message.description, metadata: merged))
    }

    /// The line for one event (pure).
    public static func line(ts: Date, level: Logger.Level, event: String, metadata: Logger.Metadata) -> String {
        var object: [String: Any] = [:]
        for (key, value) in metadata { object[key] = json(value) }
        object["ts"] = ISO8601DateFormatter.withFractionalSeconds.string(from: ts)
        object["level"] = level.rawValue
        object["event"] = event
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return "{\"event\":\"log.unencodable\",\"level\":\"error\"}\n"
        }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): return text
        case .stringConvertible(let convertible):
            switch convertible {
            case let number as Int: return number
            case let number as Int32: return Int(number)
            case let number as Double: return number.isFinite ? number : "\(number)"
            case let flag as Bool: return flag
            default: return convertible.description
            }
        case .array(let values): return values.map(json)
        case .dictionary(let values): return values.mapValues(json)
        }
    }
}
