import Foundation
import MirrorCore

/// Container credentials or EC2 instance metadata (IMDSv2) on loopback (Tests/Fixtures/metadata_server.py).
public final class MetadataServer: Server, @unchecked Sendable {
    public enum Mode: String { case container, imds }
    public let port: Int
    public let log: URL
    private let process: ChildProcess

    public init(sandbox: Sandbox, mode: Mode, accessKey: String, secretKey: String, token: String, authorization: String = "") throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/metadata_server.py")
        (port, process, _) = try Network.serve { port in
            (try Shell.start(["/usr/bin/env", "python3", script.path, "--port", "\(port)", "--mode", mode.rawValue,
                              "--authorization", authorization, "--access-key", accessKey, "--secret-key", secretKey,
                              "--token", token, "--log", sandbox.path("metadata-\(port).log").path], log: sandbox.path("metadata-\(port).out")),
             sandbox.path("metadata-\(port).out"))
        }
        log = sandbox.path("metadata-\(port).log")
        sandbox.keep(self)
    }

    public var url: String { "http://127.0.0.1:\(port)" }
    public var requests: [String] { ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }

    public func stop() { terminate(process) }
}

/// Collects the daemon's alert POSTs (Tests/Fixtures/notify_receiver.py).
public final class NotifyReceiver: Server, @unchecked Sendable {
    public let port: Int
    public let log: URL
    private let process: ChildProcess

    public init(sandbox: Sandbox) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/notify_receiver.py")
        (port, process, _) = try Network.serve { port in
            (try Shell.start(["/usr/bin/env", "python3", script.path, "--port", "\(port)", "--log", sandbox.path("notify-\(port).log").path],
                             log: sandbox.path("notify-\(port).out")),
             sandbox.path("notify-\(port).out"))
        }
        log = sandbox.path("notify-\(port).log")
        sandbox.keep(self)
    }

    public var url: String { "http://127.0.0.1:\(port)/events" }

    /// Each event: its signature header and its JSON body.
    public var events: [(signature: String, body: [String: Any])] {
        ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let body = try? JSONSerialization.jsonObject(with: Data(parts[1].utf8)) as? [String: Any] else { return nil }
            return (String(parts[0]), body)
        }
    }

    public func stop() { terminate(process) }
}
