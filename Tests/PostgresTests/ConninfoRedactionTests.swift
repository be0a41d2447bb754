import Testing
@testable import Postgres

struct ConninfoRedactionTests {
    @Test(arguments: [
        ("host=db port=5432 user=etl password=s3cret dbname=feedback",
         "host=db port=5432 user=etl password=*** dbname=feedback"),
        ("password = 's3 cr\\'et' host=db", "password = *** host=db"),
        ("host=db password='unterminated s3cret", "host=db password=***"),
        ("host=db\tpassword=a\\ b user=x", "host=db\tpassword=*** user=x"),
        ("sslpassword=keypass sslkey=/k.pem", "sslpassword=*** sslkey=/k.pem"),
        ("host=db user=etl", "host=db user=etl"),
        ("", ""),
        ("dbname='host=x password=inner' user=u", "dbname='host=x password=***' user=u"),
        ("dbname='postgresql://u:inner@x/db'", "dbname='postgresql://u:***@x/db'"),
    ])
    func keyValue(_ input: String, _ expected: String) {
        #expect(redactedConninfo(input) == expected)
    }

    @Test(arguments: [
        ("postgresql://etl:s3cret@db.example.com:5432/feedback?sslmode=require",
         "postgresql://etl:***@db.example.com:5432/feedback?sslmode=require"),
        ("postgres://etl:p%40ss@db/feedback", "postgres://etl:***@db/feedback"),
        ("postgresql://etl@db/feedback?password=s3cret&sslmode=require",
         "postgresql://etl@db/feedback?password=***&sslmode=require"),
        ("postgresql://db/feedback?sslmode=require&password=s3cret", "postgresql://db/feedback?sslmode=require&password=***"),
        ("postgresql://db/feedback?pass%77ord=s3cret", "postgresql://db/feedback?pass%77ord=***"),
        ("postgresql://db/feedback?sslpassword=k", "postgresql://db/feedback?sslpassword=***"),
        // Unencoded '@', '/', '?' and '&' in passwords: libpq would misparse, the redaction must still hide them.
        ("postgresql://etl:p@ss@db/feedback", "postgresql://etl:***@db/feedback"),
        ("postgresql://etl:pa/ss@db/feedback", "postgresql://etl:***@db/feedback"),
        ("postgresql://etl:pa?ss@db/feedback", "postgresql://etl:***@db/feedback"),
        ("postgresql://db/x?password=a&b&sslmode=disable", "postgresql://db/x?password=***&sslmode=disable"),
        ("postgresql://etl:s3cret@[::1]:5432/feedback", "postgresql://etl:***@[::1]:5432/feedback"),
        ("POSTGRESQL://etl:s3cret@db", "POSTGRESQL://etl:***@db"),
        ("postgresql://etl@db/feedback", "postgresql://etl@db/feedback"),
        ("postgresql:///feedback?host=/tmp", "postgresql:///feedback?host=/tmp"),
        ("postgresql://db/feedback?user=me@corp&password=s3cret", "postgresql://db/feedback?user=me@corp&password=***"),
    ])
    func uri(_ input: String, _ expected: String) {
        #expect(redactedConninfo(input) == expected)
    }

    @Test func secretsAreCollectedRawAndDecoded() {
        let redaction = Conninfo.redact("postgresql://u:p%40ss@db?password=x%26y")
        #expect(Set(redaction.secrets).isSuperset(of: ["p%40ss", "p@ss", "x%26y", "x&y"]))
        #expect(Conninfo.scrub("bad token \"p%40ss\" and p@ss", secrets: redaction.secrets) == "bad token \"***\" and ***")
    }

    @Test func errorDescriptionsUseTheRedactedForm() throws {
        // A malformed percent escape makes libpq quote the password back in its error message.
        let error = try #require(throws: PostgresError.self) {
            _ = try PostgresConnection(conninfo: "postgresql://etl:hunter2%zz@localhost/db")
        }
        #expect(error.kind == .invalidConninfo)
        #expect(!error.isRetryable)
        #expect(!error.description.contains("hunter2"), "\(error)")
        #expect(error.description.contains("postgresql://etl:***@localhost/db"))

        let keyValue = try #require(throws: PostgresError.self) {
            _ = try PostgresConnection(conninfo: "host=localhost password='hunter2 nope=")
        }
        #expect(keyValue.kind == .invalidConninfo)
        #expect(!keyValue.description.contains("hunter2"), "\(keyValue)")
    }

    @Test func verboseConnectionMessagesYieldTheirSQLSTATE() {
        let (message, codes) = PostgresConnection.parseVerboseConnectionMessage("""
            connection to server at "127.0.0.1", port 5432 failed: FATAL:  28P01: password authentication failed for user "x"
            LOCATION:  auth_failed, auth.c:334

            """)
        #expect(codes == ["28P01"])
        #expect(message == "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed for user \"x\"")
        let (plain, none) = PostgresConnection.parseVerboseConnectionMessage("connection to server at \"h\", port 1 failed: Connection refused")
        #expect(none.isEmpty)
        #expect(plain.hasSuffix("Connection refused"))
    }

    @Test func retryabilityFollowsTheSQLSTATE() {
        func retryable(_ kind: PostgresError.Kind, _ sqlstate: String?) -> Bool {
            PostgresError(kind, "x", sqlstate: sqlstate).isRetryable
        }
        #expect(retryable(.queryFailed, "40001"))
        #expect(retryable(.queryFailed, "40P01"))
        #expect(retryable(.queryFailed, "57P01"))
        #expect(retryable(.queryFailed, "53300"))
        #expect(retryable(.queryFailed, "08006"))
        #expect(!retryable(.queryFailed, "42601"))
        #expect(!retryable(.queryFailed, "42703"))
        #expect(!retryable(.queryFailed, "22012"))
        #expect(!retryable(.queryFailed, "57014"))
        #expect(retryable(.connectionFailed, nil))
        #expect(retryable(.connectionFailed, "57P03"))
        #expect(!retryable(.connectionFailed, "3D000"))
        #expect(!retryable(.authenticationFailed, "28P01"))
        #expect(retryable(.connectionLost, nil))
    }
}
