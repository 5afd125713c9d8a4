import Foundation
import MirrorCore

/// `git daemon --enable=receive-pack` serving every repository under `root` over git://.
public final class GitDaemon: Server, @unchecked Sendable {
    public let root: URL
    public let port: Int
    public let log: URL
    private let process: ChildProcess

    /// `environment` entries are added to the daemon's (and so to every upload-pack's) environment.
    /// `receivePack: false` serves the repositories read-only, as git daemon does by default.
    public init(sandbox: Sandbox, root: URL, port: Int? = nil, environment: [String: String] = [:], receivePack: Bool = true) throws {
        self.root = root
        (self.port, process, log) = try Network.serve(port: port) { port in
            let log = sandbox.path("git-daemon-\(port).log")
            let process = try Shell.start(["/usr/bin/git", "daemon", "--reuseaddr", "--listen=127.0.0.1", "--port=\(port)",
                                           "--base-path=\(root.path)", "--export-all"] + (receivePack ? ["--enable=receive-pack"] : []) + ["--verbose",
                                           "--informative-errors", root.path], log: log,
                                          environment: environment.isEmpty ? nil : Shell.gitEnvironment.merging(environment) { _, new in new })
            return (process, log)
        }
        sandbox.keep(self)
    }

    public func url(_ name: String) -> String { "git://127.0.0.1:\(port)/\(name)" }

    public var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    public func stop() { terminate(process) }
}

/// Accepts TCP connections and never says a word: the server that hangs libgit2.
public final class SilentServer: Server, @unchecked Sendable {
    public let port: Int
    private let descriptor: Int32

    public init(sandbox: Sandbox) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var yes: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(descriptor, 64) == 0 else { throw TestError("cannot listen: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        sandbox.keep(self)
        // Connections complete in the kernel's backlog; nothing ever reads or writes them.
    }

    public func stop() { close(descriptor) }
}

/// A TCP proxy that delays every chunk each way (Tests/Fixtures/delay_proxy.py): a server as far
/// away as a real remote. Its log says when each connection opened and closed.
public final class DelayProxy: Server, @unchecked Sendable {
    public let port: Int
    public let log: URL
    private let process: ChildProcess

    public init(sandbox: Sandbox, targetPort: Int, delay: Double) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/delay_proxy.py")
        (port, process, _) = try Network.serve { port in
            (try Shell.start(["/usr/bin/env", "python3", script.path, "--port", "\(port)", "--target-port", "\(targetPort)",
                              "--delay", "\(delay)", "--log", sandbox.path("delay-\(port).log").path], log: sandbox.path("delay-\(port).out")),
             sandbox.path("delay-\(port).out"))
        }
        log = sandbox.path("delay-\(port).log")
        sandbox.keep(self)
    }

    /// Each connection's (opened, closed) wall-clock times, in the order they opened.
    public var connections: [(opened: Double, closed: Double?)] {
        var opened: [Int: Double] = [:], closed: [Int: Double] = [:]
        for line in ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let number = Int(parts[1]), let time = Double(parts[2]) else { continue }
            if parts[0] == "open" { opened[number] = time } else { closed[number] = time }
        }
        return opened.keys.sorted().map { (opened[$0]!, closed[$0]) }
    }

    public func stop() { terminate(process) }
}
