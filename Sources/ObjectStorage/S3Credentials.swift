import Foundation

/// An access key pair with an optional session token. `description` never shows them.
public struct S3Credentials: Sendable, Equatable, CustomStringConvertible {
    public var accessKeyId: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// Where they were found ("environment", "profile 'x' in ~/.aws/credentials"), for messages.
    public var source: String

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil, source: String) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.source = source
    }

    public var description: String { "credentials from \(source)" }
}

/// The standard places, in the order AWS's own tools look (minus instance metadata and SSO, which etl does not speak):
/// 1. with an explicit profile (`storage.profile`), only that profile of the shared files;
/// 2. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
/// 3. the profile `AWS_PROFILE` names (else `default`) in `AWS_SHARED_CREDENTIALS_FILE` (`~/.aws/credentials`), then
///    in `AWS_CONFIG_FILE` (`~/.aws/config`, where it is `[profile name]`).
public struct S3CredentialChain: Sendable {
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    public func resolve(profile explicitProfile: String?) throws(ObjectStorageError) -> S3Credentials {
        if explicitProfile == nil, let key = nonEmpty("AWS_ACCESS_KEY_ID"), let secret = nonEmpty("AWS_SECRET_ACCESS_KEY") {
            return S3Credentials(accessKeyId: key, secretAccessKey: secret, sessionToken: nonEmpty("AWS_SESSION_TOKEN"),
                                 source: "the environment (AWS_ACCESS_KEY_ID)")
        }
        let profile = explicitProfile ?? nonEmpty("AWS_PROFILE") ?? "default"
        for file in [credentialsFile, configFile] {
            let section = try SharedConfigFile.load(file.path)?.section(file.isConfig ? SharedConfigFile.configSection(profile) : profile)
            guard let section else { continue }
            if let key = section["aws_access_key_id"], let secret = section["aws_secret_access_key"] {
                return S3Credentials(accessKeyId: key, secretAccessKey: secret, sessionToken: section["aws_session_token"],
                                     source: "profile '\(profile)' in \(file.path)")
            }
        }
        let looked = explicitProfile == nil ? "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set, and " : ""
        throw ObjectStorageError(.credentials, location: credentialsFile.path,
                                 "no S3 credentials: \(looked)profile '\(profile)' has no aws_access_key_id/aws_secret_access_key in \(credentialsFile.path) or \(configFile.path)")
    }

    /// The profile's settings in the config file (region, endpoint_url), for `S3Configuration`.
    func configSettings(profile explicitProfile: String?) throws(ObjectStorageError) -> [String: String] {
        let profile = explicitProfile ?? nonEmpty("AWS_PROFILE") ?? "default"
        return try SharedConfigFile.load(configFile.path)?.section(SharedConfigFile.configSection(profile)) ?? [:]
    }

    var credentialsFile: (path: String, isConfig: Bool) {
        (nonEmpty("AWS_SHARED_CREDENTIALS_FILE").map(expandHome) ?? "\(home)/.aws/credentials", false)
    }

    var configFile: (path: String, isConfig: Bool) {
        (nonEmpty("AWS_CONFIG_FILE").map(expandHome) ?? "\(home)/.aws/config", true)
    }

    private var home: String { nonEmpty("HOME") ?? NSHomeDirectory() }

    private func expandHome(_ path: String) -> String { path.hasPrefix("~/") ? home + path.dropFirst() : path }

    func nonEmpty(_ name: String) -> String? {
        guard let value = environment[name], !value.isEmpty else { return nil }
        return value
    }
}

/// The INI dialect of `~/.aws/credentials` and `~/.aws/config`: `[section]`, `key = value`, `#`/`;` comments.
/// Nested settings (indented lines under `s3 =`) are skipped.
struct SharedConfigFile {
    var sections: [String: [String: String]]

    static func configSection(_ profile: String) -> String { profile == "default" ? "default" : "profile \(profile)" }

    /// nil when the file does not exist.
    static func load(_ path: String) throws(ObjectStorageError) -> SharedConfigFile? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ObjectStorageError(.credentials, location: path, "cannot read \(path)")
        }
        return parse(text)
    }

    static func parse(_ text: String) -> SharedConfigFile {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            if rawLine.first == " " || rawLine.first == "\t" { continue }
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                current = name.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                sections[current!, default: [:]] = sections[current!] ?? [:]
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if !value.isEmpty { sections[current]![key] = value }
        }
        return SharedConfigFile(sections: sections)
    }

    func section(_ name: String) -> [String: String]? { sections[name] }
}
