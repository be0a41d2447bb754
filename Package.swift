// swift-tools-version:6.0
import PackageDescription

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
    ],
    targets: [
        // C interop: system libraries found through pkg-config, installed from Debian's -dev packages.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(
            name: "CFFmpeg", pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev", "libswresample-dev"])]),

        .target(name: "Postgres", dependencies: ["CLibPQ"]),
        .target(name: "Media", dependencies: ["CFFmpeg"]),
        .target(name: "Shards", dependencies: ["CZstd", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Pipeline", dependencies: [
            "Postgres", "Media", "Shards", .product(name: "Yams", package: "Yams"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(name: "etl", dependencies: [
            "Pipeline", "Shards", "Postgres", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "PostgresTests", dependencies: ["Postgres"]),
        .testTarget(name: "MediaTests", dependencies: ["Media"]),
        .testTarget(name: "ShardsTests", dependencies: ["Shards"], resources: [.copy("Fixtures")]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Shards", "Postgres"]),
        .testTarget(name: "EtlTests", dependencies: ["Shards", "Postgres"]),
    ]
)
