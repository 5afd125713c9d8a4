import Foundation
import MirrorCore

/// `gitmirror daemon` run as a user runs it, on a free loopback port.
public final class DaemonProcess: Server, @unchecked Sendable {
    public let port: Int
    public let log: URL
    public let process: ChildProcess
    let http = HTTPClient(timeout: 10)

    public init(sandbox: Sandbox, config: URL, environment: [String: String] = [:]) throws {
        port = try Network.freePort()
        log = sandbox.path("daemon-\(port).log")
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        process = try Shell.start([Gitmirror.executable.path, "daemon", "--config", config.path, "--listen", "127.0.0.1:\(port)"],
                                  log: log, environment: env)
        sandbox.keep(self)
        try Network.waitForPort(port: port, process: process, log: log, seconds: 30)
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
