import Foundation
import MirrorCore

/// A CodeCommit-like HTTPS git endpoint (Tests/Fixtures/codecommit_endpoint.py): it
/// checks every request's SigV4 password with botocore, then serves git http-backend.
public final class CodeCommitEndpoint: Server, @unchecked Sendable {
    public let root: URL
    public let port: Int
    public let authority: CertificateAuthority
    public let log: URL
    private let process: ChildProcess

    public init(sandbox: Sandbox, region: String, accessKey: String, secretKey: String, sessionToken: String? = nil, skew: Int = 0) throws {
        port = try Network.freePort()
        root = try sandbox.directory("codecommit-\(port)")
        let directory = try sandbox.directory("codecommit-server-\(port)")
        authority = try CertificateAuthority(sandbox: sandbox, name: "codecommit-ca-\(port)")
        let issued = try authority.issue(in: directory)
        log = directory.appendingPathComponent("auth.log")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/codecommit_endpoint.py")
        var command = ["/usr/bin/env", "python3", script.path, "--port", "\(port)", "--root", root.path, "--cert", issued.certificate.path,
                       "--key", issued.key.path, "--region", region, "--access-key", accessKey, "--secret-key", secretKey,
                       "--skew", "\(skew)", "--log", log.path]
        if let sessionToken { command += ["--session-token", sessionToken] }
        process = try Shell.start(command, log: directory.appendingPathComponent("server.out"))
        sandbox.keep(self)
        try Network.waitForPort(port: port, process: process, log: directory.appendingPathComponent("server.out"))
    }

    /// A bare repository the endpoint serves as CodeCommit repository `name`.
    public func repository(_ name: String) throws -> BareRepository {
        try BareRepository.create(at: root.appendingPathComponent(name))
    }

    public var endpoint: String { "127.0.0.1:\(port)" }

    /// The authentication attempts the endpoint saw, one line each ("AUTH 200 …", "AUTH 403 …").
    public var attempts: [String] {
        ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    public func stop() { terminate(process) }
}
