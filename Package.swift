// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "gitmirror",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "gitmirror", targets: ["gitmirror"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        .systemLibrary(name: "CLibgit2", pkgConfig: "libgit2", providers: [.apt(["libgit2-dev"])]),
        .target(name: "Git", dependencies: ["CLibgit2"]),
        .target(
            name: "MirrorCore",
            dependencies: [
                "Git",
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .executableTarget(
            name: "gitmirror",
            dependencies: [
                "MirrorCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "TestSupport", dependencies: ["MirrorCore"], path: "Tests/TestSupport"),
        .testTarget(name: "GitTests", dependencies: ["Git", "TestSupport"]),
        .testTarget(name: "MirrorCoreTests", dependencies: ["MirrorCore", "TestSupport"]),
        .testTarget(name: "gitmirrorTests", dependencies: ["gitmirror", "MirrorCore", "TestSupport"]),
    ]
)
