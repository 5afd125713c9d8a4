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

    /// A copy of the executable any user can run, for tests that run gitmirror as another user
    /// (`setpriv --reuid=nobody`): the build folder may sit in a clone only its owner can enter
    /// (a `mktemp -d` folder is 0700). Copied once per test process, under the spawn lock so that
    /// no child forked meanwhile holds it open for writing.
    public static let executableForAnyUser: URL = {
        let folder = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("gitmirror-tests/bin-\(getpid())")
        let copy = folder.appendingPathComponent("gitmirror")
        // Copies left by earlier test runs (their process is gone) are removed: each is the size of a debug build.
        let base = folder.deletingLastPathComponent()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? [] where name.hasPrefix("bin-") {
            if let pid = Int32(name.dropFirst(4)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                try? FileManager.default.removeItem(at: base.appendingPathComponent(name))
            }
        }
        ChildProcess.withSpawnLock {
            try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            try? FileManager.default.removeItem(at: copy)
            try? FileManager.default.copyItem(at: executable, to: copy)
            try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: copy.path)
        }
        return copy
    }()

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
