import Foundation

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

    public func directory(_ relative: String) throws -> URL {
        let url = path(relative)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    public func write(_ relative: String, _ text: String, mode: Int = 0o600) throws -> URL {
        let url = path(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
        return url
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
