import Dataset
import Foundation
import Testing

/// The run-area contract on S3: a fresh bucket on the S3 server scripts/test starts (moto, on loopback) per check.
@Suite struct S3RunAreaContractTests {
    @Test(arguments: RunAreaContract.checks.map(\.name))
    func contract(_ name: String) throws {
        try RunAreaContract.run(name) { try S3DatasetStoreContractTests.makeStore($0) }
    }
}
