import Foundation
import MirrorCore

/// A temporary directory for one test, removed when the test lets go of it.
public final class Sandbox: @unchecked Sendable {
    public let root: URL
    private var servers: [Server] = []
    private let lock = NSLock()

    public init(_ name: String = "test") throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("gitmirror-tests")
        root = base.appendingPathComponent("\(name)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit {
        for server in servers { server.stop() }
        if ProcessInfo.processInfo.environment["GITMIRROR_KEEP_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(at: root)
        }
    }

    public func path(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// The files under `relative` that contain any of `needles` (canary secrets), and how many files were read.
    public func files(under relative: String, containing needles: [String]) -> (hits: [String], read: Int) {
        var hits: [String] = []
        var read = 0
        let enumerator = FileManager.default.enumerator(at: path(relative), includingPropertiesForKeys: nil)
        while let file = enumerator?.nextObject() as? URL {
            guard let data = FileManager.default.contents(atPath: file.path) else { continue }
            read += 1
            if needles.contains(where: { data.range(of: Data($0.utf8)) != nil }) { hits.append(file.path) }
        }
        return (hits, read)
    }

    public func directory(_ relative: String) throws -> URL {
        let url = path(relative)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    public func write(_ relative: String, _ text: String, mode: Int = 0o600) throws -> URL {
        let url = path(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Self.writeFile(url, text, mode: mode)
        return url
    }

    /// Writes under the spawn lock: a child forked by another test while the file is still open would
    /// hold its descriptor until it execs, and running the file (a script, a hook) in that moment
    /// fails with "Text file busy" (exit 126).
    public static func writeFile(_ url: URL, _ text: String, mode: Int) throws {
        try ChildProcess.withSpawnLock {
            try text.write(to: url, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
        }
    }

    /// Servers stop with the sandbox.
    public func keep(_ server: Server) {
        lock.lock()
        servers.append(server)
        lock.unlock()
    }
}

/// A server process the tests started.
public protocol Server: AnyObject {
    func stop()
}
