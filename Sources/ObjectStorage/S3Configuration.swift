import Foundation

/// What a pipeline's `storage:` section says; every field optional (the environment and the shared config files
/// fill the rest).
public struct S3StorageOptions: Sendable, Equatable {
    public var endpointURL: String?
    public var region: String?
    public var pathStyle: Bool?
    public var profile: String?

    public init(endpointURL: String? = nil, region: String? = nil, pathStyle: Bool? = nil, profile: String? = nil) {
        self.endpointURL = endpointURL
        self.region = region
        self.pathStyle = pathStyle
        self.profile = profile
    }
}

/// Everything a request needs: where the server is, how to address a bucket, and how to sign.
public struct S3Configuration: Sendable {
    /// `scheme://host[:port]`, no trailing slash.
    public var endpoint: String
    public var region: String
    /// `endpoint/bucket/key` rather than `bucket.host/key`.
    public var pathStyle: Bool
    public var credentials: S3Credentials

    public init(endpoint: String, region: String, pathStyle: Bool, credentials: S3Credentials) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.region = region
        self.pathStyle = pathStyle
        self.credentials = credentials
    }

    /// The settings in order of precedence: the `storage:` section, then `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`,
    /// `AWS_REGION` / `AWS_DEFAULT_REGION`, then the profile's `endpoint_url` / `region` in the config file; AWS's own
    /// endpoint for the region (default us-east-1) when none is given. Path-style addressing is the default for an
    /// endpoint given explicitly (MinIO, moto, Ceph and most other S3-compatible servers need it), virtual-hosted for AWS.
    public static func resolve(_ options: S3StorageOptions,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws(ObjectStorageError) -> S3Configuration {
        let chain = S3CredentialChain(environment: environment)
        let credentials = try chain.resolve(profile: options.profile)
        let profileSettings = try chain.configSettings(profile: options.profile)
        let region = options.region ?? chain.nonEmpty("AWS_REGION") ?? chain.nonEmpty("AWS_DEFAULT_REGION")
            ?? profileSettings["region"] ?? "us-east-1"
        let explicitEndpoint = options.endpointURL ?? chain.nonEmpty("AWS_ENDPOINT_URL_S3") ?? chain.nonEmpty("AWS_ENDPOINT_URL")
            ?? profileSettings["endpoint_url"]
        let endpoint = explicitEndpoint ?? "https://s3.\(region).amazonaws.com"
        guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              url.host != nil, url.path.isEmpty || url.path == "/", url.query == nil else {
            throw ObjectStorageError(.invalidRequest, location: endpoint,
                                     "the S3 endpoint '\(endpoint)' is not an http(s)://host[:port] URL")
        }
        return S3Configuration(endpoint: endpoint, region: region, pathStyle: options.pathStyle ?? (explicitEndpoint != nil),
                               credentials: credentials)
    }

    /// The URL of a bucket or key, with the query parameters sorted and encoded as SigV4's canonical form wants them.
    func url(bucket: String, key: String?, query: [(String, String)] = []) -> String {
        let path = key.map { "/" + S3Encoding.path($0) } ?? "/"
        var base: String
        if pathStyle {
            base = "\(endpoint)/\(bucket)\(key == nil ? "" : path)"
        } else {
            let schemeEnd = endpoint.range(of: "://")!.upperBound
            base = "\(endpoint[..<schemeEnd])\(bucket).\(endpoint[schemeEnd...])\(path)"
        }
        if !query.isEmpty {
            base += "?" + query.sorted { $0.0 < $1.0 }
                .map { "\(S3Encoding.component($0.0))=\(S3Encoding.component($0.1))" }.joined(separator: "&")
        }
        return base
    }
}

/// `s3://bucket/prefix`: where a dataset root lives.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    public var bucket: String
    /// No leading or trailing slash; empty for the bucket's root.
    public var prefix: String

    public init(bucket: String, prefix: String) {
        self.bucket = bucket
        self.prefix = prefix.split(separator: "/").joined(separator: "/")
    }

    /// nil unless `url` is `s3://<bucket>[/<prefix>]` with a valid bucket name.
    public init?(url: String) {
        guard url.lowercased().hasPrefix("s3://") else { return nil }
        let rest = url.dropFirst(5)
        let bucket = String(rest.prefix { $0 != "/" })
        guard bucket.count >= 3, bucket.count <= 63,
              bucket.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") }) else { return nil }
        self.init(bucket: bucket, prefix: String(rest.dropFirst(bucket.count)))
    }

    /// The key of `path` below the prefix.
    public func key(_ path: String) -> String { prefix.isEmpty ? path : "\(prefix)/\(path)" }

    public var description: String { prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)" }
}

enum S3Encoding {
    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// A query parameter name or value: everything but the unreserved characters percent-encoded.
    static func component(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }

    /// A key in a URL path: as a component, slashes kept.
    static func path(_ key: String) -> String {
        key.split(separator: "/", omittingEmptySubsequences: false).map { component(String($0)) }.joined(separator: "/")
    }
}
