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

    public init(sandbox: Sandbox, region: String, accessKey: String, secretKey: String, sessionToken: String? = nil, skew: Int = 0,
                moto: MotoServer? = nil) throws {
        let unique = UUID().uuidString.prefix(8).lowercased()
        root = try sandbox.directory("codecommit-\(unique)")
        let directory = try sandbox.directory("codecommit-server-\(unique)")
        authority = try CertificateAuthority(sandbox: sandbox, name: "codecommit-ca-\(unique)")
        let issued = try authority.issue(in: directory)
        log = directory.appendingPathComponent("auth.log")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/codecommit_endpoint.py")
        var command = ["/usr/bin/env", "python3", script.path, "--root", root.path, "--cert", issued.certificate.path,
                       "--key", issued.key.path, "--region", region, "--access-key", accessKey, "--secret-key", secretKey,
                       "--skew", "\(skew)", "--log", log.path]
        if let sessionToken { command += ["--session-token", sessionToken] }
        if let moto { command += ["--moto", moto.url] }
        let out = directory.appendingPathComponent("server.out")
        (port, process, _) = try Network.serve { port in (try Shell.start(command + ["--port", "\(port)"], log: out), out) }
        sandbox.keep(self)
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

/// moto in server mode: CodeCommit's and STS's APIs on loopback (ListRepositories, BatchGetRepositories and
/// UpdateDefaultBranch added, which moto 5 lacks).
public final class MotoServer: Server, @unchecked Sendable {
    public let port: Int
    private let process: ChildProcess

    /// `pageSize`: how many repositories one ListRepositories answer holds.
    public init(sandbox: Sandbox, pageSize: Int? = nil) throws {
        // moto's own server, with the CodeCommit calls moto lacks added (Tests/Fixtures/moto_server.py).
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/moto_server.py")
        var environment = ProcessInfo.processInfo.environment
        if let pageSize { environment["MOTO_CODECOMMIT_PAGE_SIZE"] = "\(pageSize)" }
        (port, process, _) = try Network.serve(seconds: 30) { port in
            let log = sandbox.path("moto-\(port).log")
            return (try Shell.start(["/usr/bin/env", "python3", script.path, "-H", "127.0.0.1", "-p", "\(port)"], log: log, environment: environment), log)
        }
        sandbox.keep(self)
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// Runs boto3 against this server and returns what the snippet prints; `client` is a CodeCommit client, `sts` an STS one.
    public func python(_ snippet: String) throws -> String {
        let script = """
            import boto3, json
            client = boto3.client("codecommit", region_name="eu-west-1", endpoint_url="\(url)", aws_access_key_id="testing", aws_secret_access_key="testing")
            sts = boto3.client("sts", region_name="eu-west-1", endpoint_url="\(url)", aws_access_key_id="testing", aws_secret_access_key="testing")
            iam = boto3.client("iam", region_name="us-east-1", endpoint_url="\(url)", aws_access_key_id="testing", aws_secret_access_key="testing")

            """ + snippet
        return try Shell.run(["python3", "-c", script]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func stop() { terminate(process) }
}
