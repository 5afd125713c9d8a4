import Foundation
import MirrorCore

/// The gitmirror executable, built next to the test bundle, run as a user runs it.
public enum Gitmirror {
    public static var executable: URL {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On Linux the test runner is .build/<config>/<name>PackageTests.xctest
        if directory.lastPathComponent.hasSuffix(".xctest") { directory = directory.deletingLastPathComponent() }
        return directory.appendingPathComponent("gitmirror")
    }

    @discardableResult
    public static func run(_ arguments: [String], config: URL, environment: [String: String] = [:]) throws -> Shell.Output {
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        return try Shell.run([executable.path] + arguments + ["--config", config.path], environment: env, check: false)
    }

    /// The state store a configuration writes to.
    public static func store(_ config: URL) throws -> StateStore {
        let loaded = try ConfigLoader.forThisMachine().load(file: config)
        return try StateStore(path: loaded.databaseURL.path, readOnly: true)
    }
}

extension Shell.Output: CustomStringConvertible {
    public var description: String { "exit \(status)\n--- stdout\n\(stdout)\n--- stderr\n\(stderr)" }
}
