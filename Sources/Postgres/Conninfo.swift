/// `conninfo` with every password masked as `***`, for logs and error messages.
///
/// Both libpq syntaxes are handled: `key=value` strings (`password` and `sslpassword`, quoted or not, and a
/// connection string nested in `dbname`) and `postgresql://user:password@host/db?password=…` URIs. The rest of
/// the text is kept as written so the user still sees which server and database were meant.
///
/// Malformed input is redacted generously rather than precisely: when the text cannot be parsed the way libpq would,
/// more is masked (e.g. everything between the first `:` and the last `@` of a URI authority), never less.
public func redactedConninfo(_ conninfo: String) -> String {
    Conninfo.redact(conninfo).text
}

enum Conninfo {
    static let mask = "***"
    static let sensitiveKeys: Set<String> = ["password", "sslpassword"]

    struct Redaction {
        var text: String
        /// Every password found, both as written and decoded, so libpq messages quoting them can be scrubbed.
        var secrets: [String]
    }

    static func isURI(_ conninfo: String) -> Bool {
        let lower = conninfo.lowercased()
        return lower.hasPrefix("postgresql://") || lower.hasPrefix("postgres://")
    }

    /// Whether libpq would treat `conninfo` as a connection string rather than as a bare database name.
    static func isConnectionString(_ conninfo: String) -> Bool {
        isURI(conninfo) || conninfo.contains("=")
    }

    static func redact(_ conninfo: String) -> Redaction {
        isURI(conninfo) ? redactURI(conninfo) : redactKeyValue(conninfo)
    }

    /// Replaces every non-empty secret in `text` with the mask. Longer secrets go first so that one password being a
    /// prefix of another cannot leave the tail of the longer one behind.
    static func scrub(_ text: String, secrets: [String]) -> String {
        var result = text
        for secret in Set(secrets).filter({ !$0.isEmpty }).sorted(by: { $0.count > $1.count }) {
            result = result.replacing(secret, with: mask)
        }
        return result
    }

    // MARK: key=value

    private static func redactKeyValue(_ conninfo: String) -> Redaction {
        let chars = Array(conninfo.unicodeScalars)
        var output = String.UnicodeScalarView()
        var secrets: [String] = []
        var i = 0

        func isSpace(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0B}" || c == "\u{0C}" }

        while i < chars.count {
            // Whitespace and the key are copied unchanged.
            while i < chars.count, isSpace(chars[i]) { output.append(chars[i]); i += 1 }
            let keyStart = i
            while i < chars.count, !isSpace(chars[i]), chars[i] != "=" { i += 1 }
            let key = String(String.UnicodeScalarView(chars[keyStart..<i]))
            output.append(contentsOf: chars[keyStart..<i])
            while i < chars.count, isSpace(chars[i]) { output.append(chars[i]); i += 1 }
            guard i < chars.count, chars[i] == "=" else { continue }
            output.append(chars[i]); i += 1
            while i < chars.count, isSpace(chars[i]) { output.append(chars[i]); i += 1 }

            // The value: quoted (backslash escapes, runs to the closing quote or, unterminated, to the end) or bare
            // (backslash escapes, runs to whitespace).
            let valueStart = i
            var decoded = String.UnicodeScalarView()
            var quoted = false
            if i < chars.count, chars[i] == "'" {
                quoted = true
                i += 1
                while i < chars.count, chars[i] != "'" {
                    if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                    decoded.append(chars[i]); i += 1
                }
                if i < chars.count { i += 1 }
            } else {
                while i < chars.count, !isSpace(chars[i]) {
                    if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                    decoded.append(chars[i]); i += 1
                }
            }
            let raw = chars[valueStart..<i]
            let value = String(decoded)

            if sensitiveKeys.contains(key) {
                output.append(contentsOf: mask.unicodeScalars)
                secrets.append(value)
                let inner = quoted ? raw.dropFirst().prefix(while: { $0 != "'" }) : raw[...]
                secrets.append(String(String.UnicodeScalarView(inner)))
            } else if key == "dbname", isConnectionString(value) {
                // libpq expands a connection string given as dbname, so it may carry a password of its own.
                let nested = redact(value)
                secrets += nested.secrets
                if nested.text == value {
                    output.append(contentsOf: raw)
                } else {
                    let escaped = nested.text.replacing("\\", with: "\\\\").replacing("'", with: "\\'")
                    output.append(contentsOf: ("'" + escaped + "'").unicodeScalars)
                }
            } else {
                output.append(contentsOf: raw)
            }
        }
        return Redaction(text: String(output), secrets: secrets)
    }

    // MARK: URI

    private static func redactURI(_ conninfo: String) -> Redaction {
        let chars = Array(conninfo.unicodeScalars)
        var ranges: [Range<Int>] = []  // value ranges to mask, in order
        var secrets: [String] = []
        let restStart = (conninfo.lowercased().hasPrefix("postgresql://") ? "postgresql://" : "postgres://")
            .unicodeScalars.count

        // userinfo: libpq ends it at the first '@'. A password containing an unescaped '@' would make libpq
        // misparse, so extend to the last '@' before the path or query that follows.
        var queryFrom = restStart
        if let firstAt = chars[restStart...].firstIndex(of: "@") {
            let boundary = chars[firstAt...].firstIndex(where: { $0 == "/" || $0 == "?" }) ?? chars.count
            let lastAt = chars[firstAt..<boundary].lastIndex(of: "@") ?? firstAt
            if let colon = chars[restStart..<lastAt].firstIndex(of: ":") {
                ranges.append((colon + 1)..<lastAt)
                queryFrom = lastAt
            }
        }
        if let queryStart = chars[queryFrom...].firstIndex(of: "?") {
            var i = queryStart + 1
            while i < chars.count {
                let paramStart = i
                while i < chars.count, chars[i] != "&", chars[i] != "=" { i += 1 }
                let key = percentDecoded(chars[paramStart..<i]) ?? String(String.UnicodeScalarView(chars[paramStart..<i]))
                guard i < chars.count, chars[i] == "=" else { i += 1; continue }
                i += 1
                let valueStart = i
                if sensitiveKeys.contains(key) {
                    // An unescaped '&' inside a password would end it for libpq; only a following `name=` is
                    // trusted to start a new parameter, so such a password is still masked whole.
                    while i < chars.count, !(chars[i] == "&" && startsParameter(chars, at: i + 1)) { i += 1 }
                    ranges.append(valueStart..<i)
                } else {
                    while i < chars.count, chars[i] != "&" { i += 1 }
                }
                i += 1
            }
        }

        var output = String.UnicodeScalarView()
        var cursor = 0
        for range in ranges {
            output.append(contentsOf: chars[cursor..<range.lowerBound])
            output.append(contentsOf: mask.unicodeScalars)
            let raw = chars[range]
            secrets.append(String(String.UnicodeScalarView(raw)))
            if let decoded = percentDecoded(raw) { secrets.append(decoded) }
            cursor = range.upperBound
        }
        output.append(contentsOf: chars[cursor...])
        return Redaction(text: String(output), secrets: secrets)
    }

    private static func startsParameter(_ chars: [Unicode.Scalar], at index: Int) -> Bool {
        var i = index
        while i < chars.count, ("a"..."z").contains(chars[i]) || chars[i] == "_" {
            i += 1
        }
        return i > index && i < chars.count && chars[i] == "="
    }

    private static func percentDecoded(_ scalars: ArraySlice<Unicode.Scalar>) -> String? {
        var bytes: [UInt8] = []
        var i = scalars.startIndex
        while i < scalars.endIndex {
            let c = scalars[i]
            if c == "%" {
                guard i + 2 < scalars.endIndex, let high = hexValue(scalars[i + 1]), let low = hexValue(scalars[i + 2])
                else { return nil }
                bytes.append(high << 4 | low)
                i += 3
            } else {
                bytes.append(contentsOf: Array(String(c).utf8))
                i += 1
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ c: Unicode.Scalar) -> UInt8? {
        switch c {
        case "0"..."9": UInt8(c.value - 48)
        case "a"..."f": UInt8(c.value - 87)
        case "A"..."F": UInt8(c.value - 55)
        default: nil
        }
    }
}
