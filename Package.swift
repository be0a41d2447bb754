// swift-tools-version:6.0
import PackageDescription

/// The modules a row passes through on its way from libpq to a shard. Release builds skip Swift's run-time exclusivity
/// checks there: every mutation of a class property or global costs a call into the runtime and a thread-local lookup,
/// about 4 % of a run over millions of small rows (perf). Debug builds, which the tests use, keep the checks, so a
/// violation still fails a test.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "etl",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "etl", targets: ["etl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        // Structured logs (--log-format json): the LogHandler API only; no backend pulled in.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C interop: system libraries found through pkg-config, installed from Debian's -dev packages.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // libcurl for S3: HTTP(S), connection reuse, and AWS SigV4 request signing (CURLOPT_AWS_SIGV4).
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "CFFmpeg", pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev", "libswresample-dev"])]),

        .target(name: "Postgres", dependencies: ["CLibPQ"], swiftSettings: hotPath),
        .target(name: "Media", dependencies: ["CFFmpeg"]),
        // One place for POSIX calls (EINTR, fsync, errno text), shared by the shard format and the local store.
        .target(name: "CSystem"),
        // SHA-256 on the CPU's SHA instructions, for the split of every row (see SplitAssigner).
        .target(name: "CSHA256"),
        .target(name: "SystemIO", dependencies: ["CSystem"]),
        // An S3 client (no dataset knowledge): objects, listings, multipart, conditional PUT, credentials, retries.
        .target(name: "ObjectStorage", dependencies: ["CCurl", "SystemIO"]),
        // The MDS shard format only: encodings, sample codec, shard writer/reader, index.json, zstd, hashes.
        .target(name: "MDS", dependencies: ["CZstd", "SystemIO", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: hotPath),
        // Versions of a dataset: manifest, VersionBuilder, the store protocol and its implementations.
        .target(name: "Dataset", dependencies: ["MDS", "SystemIO", "ObjectStorage", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: hotPath),
        .target(name: "Pipeline", dependencies: [
            "Postgres", "Media", "MDS", "Dataset", "SystemIO", "ObjectStorage", "CSHA256", .product(name: "Yams", package: "Yams"),
            .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: hotPath),
        .executableTarget(name: "etl", dependencies: [
            "Pipeline", "MDS", "Dataset", "Postgres", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .testTarget(name: "PostgresTests", dependencies: ["Postgres"]),
        .testTarget(name: "MediaTests", dependencies: ["Media"]),
        .testTarget(name: "MDSTests", dependencies: ["MDS", "SystemIO"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ObjectStorageTests", dependencies: ["ObjectStorage"]),
        .testTarget(name: "DatasetTests", dependencies: ["Dataset", "MDS", "SystemIO", "ObjectStorage"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "CSHA256", "MDS", "Dataset", "Postgres", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "EtlTests", dependencies: ["MDS", "Dataset", "ObjectStorage", "Postgres", .product(name: "Yams", package: "Yams")]),
    ]
)
