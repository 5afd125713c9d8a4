import Foundation
import MirrorCore

/// `gitmirror daemon` run as a user runs it, on a free loopback port.
public final class DaemonProcess: Server, @unchecked Sendable {
    public let port: Int
    public let log: URL
    public let process: ChildProcess
    let http = HTTPClient(timeout: 10)

    /// `port`: a port chosen beforehand (a fleet's peers must know each other's); `arguments` follow the rest.
    public init(sandbox: Sandbox, config: URL, environment: [String: String] = [:], port: Int? = nil, arguments: [String] = []) throws {
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        (self.port, process, log) = try Network.serve(port: port, seconds: 30) { port in
            let log = sandbox.path("daemon-\(port).log")
            return (try Shell.start([Gitmirror.executable.path, "daemon", "--config", config.path, "--listen", "127.0.0.1:\(port)"] + arguments,
                                    log: log, environment: env), log)
        }
        sandbox.keep(self)
    }

    public var url: String { "http://127.0.0.1:\(port)" }
    public var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    public func get(_ path: String) throws -> HTTPClient.Response {
        try http.send("GET", URL(string: url + path)!)
    }

    public func post(_ path: String, body: String = "", headers: [String: String] = [:]) throws -> HTTPClient.Response {
        try http.send("POST", URL(string: url + path)!, headers: headers, body: Data(body.utf8))
    }

    /// Waits until /readyz answers 200.
    public func waitUntilReady(seconds: Double = 30) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? get("/readyz"))?.status == 200 { return }
            usleep(100_000)
        }
        throw TestError("the daemon did not become ready:\n\(logText)")
    }

    public func stop() {
        guard process.isRunning else { return }
        process.signal(SIGKILL)
        process.wait()
    }
}

/// Polls until `condition` holds or the time is up; true if it held.
public func eventually(within seconds: Double, every interval: Double = 0.1, _ condition: () throws -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        if (try? condition()) == true { return true }
        usleep(UInt32(interval * 1_000_000))
    } while Date() < deadline
    return (try? condition()) == true
}

/// A Unix datagram socket, standing in for systemd's NOTIFY_SOCKET.
public final class DatagramListener: @unchecked Sendable {
    private let descriptor: Int32

    public init(path: String) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw TestError("cannot bind \(path): \(String(cString: strerror(errno)))") }
    }

    deinit { close(descriptor) }

    /// The next datagram, or nil after `seconds`.
    public func receive(within seconds: Double) -> String? {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(seconds * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
    }
}
