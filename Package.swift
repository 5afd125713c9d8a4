// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "gitmirror",
    // macOS 15: Synchronization's Mutex (Linux has it with the toolchain).
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gitmirror", targets: ["gitmirror"]),
    ],
    // Exact versions: Package.resolved stays out of git, so these lines are what makes two builds
    // (the package, the image) the same. Raise them deliberately, and the tests say what changed.
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        // Already built for Hummingbird: the daemon's connection guard is a NIO channel handler.
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras", exact: "1.35.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types", exact: "1.8.0"),
        // Already built for ServiceLifecycle: its AsyncTimerSequence drives the daemon's periodic services.
        .package(url: "https://github.com/apple/swift-async-algorithms", exact: "1.1.4"),
        // The status page's templates (Mustache escapes every value it fills in).
        .package(url: "https://github.com/hummingbird-project/swift-mustache", exact: "2.1.1"),
    ],
    targets: [
        // libgit2's headers (libgit2-dev); the library is loaded when it is first needed (CGitTee's
        // gitmirror_git2.h says why), not linked.
        .systemLibrary(name: "CLibgit2", providers: [.apt(["libgit2-dev"])]),
        // libcurl's headers (libcurl4-openssl-dev); the library is loaded on first use (CCurl.h says why).
        .target(name: "CCurl"),
        // libcrypto's headers (libssl-dev); the library is loaded on first use (CCrypto.h says why).
        .target(name: "CCrypto"),
        .systemLibrary(name: "CCrypt", providers: [.apt(["libcrypt-dev"])]),
        .target(name: "CGitTee", dependencies: ["CLibgit2"]),
        .target(name: "Git", dependencies: ["CLibgit2", "CGitTee"], swiftSettings: strict),
        .target(
            name: "MirrorCore",
            dependencies: [
                "Git",
                "CCurl",
                "CCrypto",
                "CCrypt",
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "gitmirror",
            dependencies: [
                "MirrorCore",
                "Git",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["link-order.txt", "private-text.ld"],
            swiftSettings: strict,
            linkerSettings: compactLink
        ),
        .target(name: "TestSupport", dependencies: ["MirrorCore"], path: "Tests/TestSupport"),
        .testTarget(name: "GitTests", dependencies: ["Git", "CLibgit2", "TestSupport"]),
        .testTarget(name: "MirrorCoreTests", dependencies: [
            "MirrorCore", "TestSupport",
            .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "gitmirrorTests", dependencies: ["gitmirror", "MirrorCore", "Git", "TestSupport"]),
    ]
)

/// How gitmirror is linked, for the memory of every process it starts (a sync is a supervisor and a
/// few workers, each mapping the same binary; its RSS counts each page of the binary it touches,
/// and the kernel maps up to 64 KiB around each page faulted in):
/// - lld with packed relative relocations (`-z pack-relative-relocs`, DT_RELR, glibc 2.36): the
///   dynamic loader read 2.8 MB of `.rela.dyn` at every start; it reads 23 KB of `.relr.dyn`.
/// - `--no-export-dynamic`: the static Swift runtime's link arguments export all 31,000 of the
///   binary's symbols, whose tables (2.9 MB) the loader searched while binding libgit2 and the
///   others. Only CGitTee's `mbedtls_x509_crt_parse_file` stays exported, by name: libgit2 (loaded
///   when first needed, not linked) must find it before mbedTLS's.
/// - in a release build, `link-order.txt` (made by scripts/link-order) lays out the functions a
///   sync runs side by side, so that a process touches a few MiB of code rather than pages all over
///   a 26 MB text section. scripts/release compiles with `-function-sections` so that each function
///   can be placed on its own.
var compactLink: [LinkerSetting] {
    let order = Context.packageDirectory + "/Sources/gitmirror/link-order.txt"
    return [
        .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic",
                       "-Xlinker", "--export-dynamic-symbol=mbedtls_x509_crt_parse_file"],
                     .when(platforms: [.linux])),
        .unsafeFlags(["-Xlinker", "--symbol-ordering-file=\(order)", "-Xlinker", "--no-warn-symbol-ordering",
                      "-Xlinker", "-T", "-Xlinker", Context.packageDirectory + "/Sources/gitmirror/private-text.ld"],
                     .when(platforms: [.linux], configuration: .release)),
    ]
}

/// Upcoming language features, on the product's own targets:
/// - ExistentialAny: an existential says `any`, so the cost of boxing is visible where it is paid
///   (as in swift-argument-parser, Hummingbird and GRDB's own sources).
/// - MemberImportVisibility: a file uses only members of modules it imports itself, so moving a file
///   between layers cannot silently keep a dependency that an import no longer states.
/// - InternalImportsByDefault is not on: MirrorCore's public API exposes Logging's and Git's types.
var strict: [SwiftSetting] {
    [.enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility")]
}
