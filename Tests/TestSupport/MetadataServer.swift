import Foundation
import MirrorCore

/// Container credentials or EC2 instance metadata (IMDSv2) on loopback (Tests/Fixtures/metadata_server.py).
public final class MetadataServer: Server, @unchecked Sendable {
    public enum Mode: String { case container, imds }
    public let port: Int
    public let log: URL
    private let process: ChildProcess

    public init(sandbox: Sandbox, mode: Mode, accessKey: String, secretKey: String, token: String, authorization: String = "") throws {
        port = try Network.freePort()
        log = sandbox.path("metadata-\(port).log")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/metadata_server.py")
        process = try Shell.start(["/usr/bin/env", "python3", script.path, "--port", "\(port)", "--mode", mode.rawValue,
                                   "--authorization", authorization, "--access-key", accessKey, "--secret-key", secretKey,
                                   "--token", token, "--log", log.path], log: sandbox.path("metadata-\(port).out"))
        sandbox.keep(self)
        try Network.waitForPort(port: port, process: process, log: sandbox.path("metadata-\(port).out"))
    }

    public var url: String { "http://127.0.0.1:\(port)" }
    public var requests: [String] { ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }

    public func stop() { terminate(process) }
}
