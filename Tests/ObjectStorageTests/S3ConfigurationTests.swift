import Foundation
@testable import ObjectStorage
import Testing

/// Where settings and credentials come from, with files and variables made up for each test.
@Suite struct S3ConfigurationTests {
    static func files(credentials: String, config: String) throws -> (credentials: String, config: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("aws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let c = directory.appendingPathComponent("credentials").path, k = directory.appendingPathComponent("config").path
        try credentials.write(toFile: c, atomically: true, encoding: .utf8)
        try config.write(toFile: k, atomically: true, encoding: .utf8)
        return (c, k)
    }

    @Test func environmentKeysComeFirst() throws {
        let env = ["AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "envtoken",
                   "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
                   "AWS_REGION": "eu-west-3", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"]
        let config = try S3Configuration.resolve(S3StorageOptions(), environment: env)
        #expect(config.credentials.accessKeyId == "AKIAENV" && config.credentials.sessionToken == "envtoken")
        #expect(config.region == "eu-west-3" && config.endpoint == "http://127.0.0.1:9000" && config.pathStyle)
        #expect(!String(describing: config.credentials).contains("envsecret"))
    }

    @Test func profilesFromSharedFiles() throws {
        let (credentials, config) = try Self.files(
            credentials: "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = defsecret\n\n[team]\n# a comment\naws_access_key_id=AKIATEAM\naws_secret_access_key=teamsecret\naws_session_token = teamtoken\n",
            config: "[default]\nregion = us-west-2\n[profile team]\nregion = ap-south-1\nendpoint_url = https://minio.internal:9000\ns3 =\n  addressing_style = path\n[profile onlyconfig]\naws_access_key_id = AKIACONF\naws_secret_access_key = confsecret\n")
        let base = ["AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_CONFIG_FILE": config]

        let byDefault = try S3Configuration.resolve(S3StorageOptions(), environment: base)
        #expect(byDefault.credentials.accessKeyId == "AKIADEFAULT" && byDefault.region == "us-west-2")
        #expect(byDefault.endpoint == "https://s3.us-west-2.amazonaws.com" && !byDefault.pathStyle)

        let team = try S3Configuration.resolve(S3StorageOptions(), environment: base.merging(["AWS_PROFILE": "team"]) { $1 })
        #expect(team.credentials.accessKeyId == "AKIATEAM" && team.credentials.sessionToken == "teamtoken")
        #expect(team.region == "ap-south-1" && team.endpoint == "https://minio.internal:9000" && team.pathStyle)

        // An explicit profile wins over keys in the environment.
        let explicit = try S3Configuration.resolve(S3StorageOptions(region: "eu-central-1", pathStyle: false, profile: "onlyconfig"),
                                                   environment: base.merging(["AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "x"]) { $1 })
        #expect(explicit.credentials.accessKeyId == "AKIACONF" && explicit.region == "eu-central-1" && !explicit.pathStyle)
    }

    @Test func missingCredentialsSayWhereTheyWereLookedFor() throws {
        let (credentials, config) = try Self.files(credentials: "[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = othersecret\n", config: "")
        let error = #expect(throws: ObjectStorageError.self) {
            try S3Configuration.resolve(S3StorageOptions(), environment: ["AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_CONFIG_FILE": config])
        }
        #expect(error?.code == .credentials)
        #expect(error?.message.contains("profile 'default'") == true && error?.message.contains(credentials) == true)
        #expect(error?.message.contains("othersecret") == false)
    }

    @Test func badEndpointIsRefused() {
        let env = ["AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "envsecret"]
        for endpoint in ["ftp://host", "not a url", "http://host/path"] {
            let error = #expect(throws: ObjectStorageError.self) { try S3Configuration.resolve(S3StorageOptions(endpointURL: endpoint), environment: env) }
            #expect(error?.code == .invalidRequest)
        }
    }

    @Test func locationsAndURLs() {
        #expect(S3Location(url: "s3://my-bucket/some/prefix/") == S3Location(bucket: "my-bucket", prefix: "some/prefix"))
        #expect(S3Location(url: "s3://my-bucket")?.key("ds/v1") == "ds/v1")
        #expect(S3Location(url: "s3://Bad_Bucket/x") == nil && S3Location(url: "/local/path") == nil)
        let credentials = S3Credentials(accessKeyId: "a", secretAccessKey: "b", source: "t")
        let path = S3Configuration(endpoint: "http://127.0.0.1:9000/", region: "us-east-1", pathStyle: true, credentials: credentials)
        #expect(path.url(bucket: "b", key: "a b/c+d", query: [("prefix", "x/y"), ("list-type", "2")])
                == "http://127.0.0.1:9000/b/a%20b/c%2Bd?list-type=2&prefix=x%2Fy")
        let virtual = S3Configuration(endpoint: "https://s3.eu-west-1.amazonaws.com", region: "eu-west-1", pathStyle: false, credentials: credentials)
        #expect(virtual.url(bucket: "b", key: "k") == "https://b.s3.eu-west-1.amazonaws.com/k")
        #expect(virtual.url(bucket: "b", key: nil, query: [("uploads", "")]) == "https://b.s3.eu-west-1.amazonaws.com/?uploads=")
    }
}
