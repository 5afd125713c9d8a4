import Foundation
import MirrorCore
import Testing
import TestSupport

/// CodeCommit over HTTPS with SigV4 passwords, against an endpoint that checks them with botocore.
@Suite(.onTestThreads) struct CodeCommitTests {
    static let accessKey = "AKIACANARYKEY0000001"
    static let secret = "canary-aws-secret-key/7f3a+9"

    /// Environment for gitmirror: static keys, the test CA, and no instance metadata lookups off this machine.
    func environment(_ endpoint: CodeCommitEndpoint, secret: String = CodeCommitTests.secret) -> [String: String] {
        ["AWS_ACCESS_KEY_ID": Self.accessKey, "AWS_SECRET_ACCESS_KEY": secret, "AWS_CA_BUNDLE": endpoint.authority.certificate.path,
         "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"]
    }

    @Test func pushWithTheRightKeysLandsOnEveryURLForm() throws {
        // Given a CodeCommit-like endpoint holding three empty repositories
        let scenario = try Scenario("codecommit")
        try scenario.primary.commit("first")
        try scenario.primary.tag("v1", message: "one")
        let endpoint = try CodeCommitEndpoint(sandbox: scenario.sandbox, region: "eu-west-1", accessKey: Self.accessKey, secretKey: Self.secret)
        let viaHTTPS = try endpoint.repository("payments")
        let viaHelperURL = try endpoint.repository("payments-grc")
        let viaMapping = try endpoint.repository("payments-map")
        try scenario.configure(secondaries: """
            - name: console-url
              url: https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/payments
              credentials: aws
              endpoint: \(endpoint.endpoint)
            - name: grc-url
              url: codecommit::eu-west-1://payments-grc
              endpoint: \(endpoint.endpoint)
            - name: mapping
              codecommit: {region: eu-west-1, repository: payments-map}
              credentials: aws
              endpoint: \(endpoint.endpoint)
            """, credentials: "aws:\n  aws: {}")

        // When gitmirror syncs with keys from the environment
        let output = try scenario.gitmirror("sync", environment: environment(endpoint))

        // Then every repository holds the primary's refs, and the secret was never printed
        #expect(output.status == 0, "\(output)\n\(endpoint.attempts)")
        for repository in [viaHTTPS, viaHelperURL, viaMapping] {
            #expect(try repository.refs() == scenario.primary.refs(), "\(repository.path)")
        }
        #expect(!output.combined.contains(Self.secret))
        // And the secret key is neither in SQLite nor in the cache
        #expect(scenario.sandbox.files(under: "state", containing: [Self.secret]).hits.isEmpty)
        #expect(endpoint.attempts.contains { $0.hasPrefix("AUTH 200") })
        #expect(!endpoint.attempts.contains { $0.hasPrefix("AUTH 403") })
        // And being empty, each took the primary's pack as it arrived: one receive-pack POST each,
        // signed when it was made, with nothing pushed afterwards
        #expect(endpoint.attempts.filter { $0 == "AUTH 200 POST ok" }.count == 3, "\(endpoint.attempts)")
        let history = try scenario.store().refHistory(repository: "app")
        for remote in ["console-url", "grc-url", "mapping"] {
            let rows = history.filter { $0.remote == remote }
            #expect(rows.count == 2 && rows.allSatisfy { $0.outcome == .applied && $0.message == "created from the primary's pack as it arrived" },
                    "\(remote): \(rows)")
        }
    }

    @Test func sessionTokenRidesOnTheUsernameAndIsNeverWrittenDown() throws {
        let scenario = try Scenario("codecommit-token")
        try scenario.primary.commit("first")
        let token = "canary-session-token-FwoGZXIvYXdzE"
        let endpoint = try CodeCommitEndpoint(sandbox: scenario.sandbox, region: "eu-central-1", accessKey: "ASIACANARY0000000001",
                                              secretKey: Self.secret, sessionToken: token)
        let target = try endpoint.repository("payments")
        try scenario.configure(secondaries: "- name: cc\n  url: codecommit::eu-central-1://payments\n  endpoint: \(endpoint.endpoint)")
        var environment = environment(endpoint)
        environment["AWS_ACCESS_KEY_ID"] = "ASIACANARY0000000001"
        environment["AWS_SESSION_TOKEN"] = token

        let output = try scenario.gitmirror("sync", environment: environment)
        let status = try scenario.gitmirror("status", environment: environment)

        #expect(output.status == 0, "\(output)\n\(endpoint.attempts)")
        #expect(try target.refs() == scenario.primary.refs())
        for text in [output.combined, status.combined] {
            #expect(!text.contains(token) && !text.contains(Self.secret))
        }
        #expect(scenario.sandbox.files(under: "state", containing: [token, Self.secret]).hits.isEmpty)
    }

    @Test func wrongSecretFailsWithAuthAfterAtMostTwoAttempts() throws {
        let scenario = try Scenario("codecommit-wrong")
        try scenario.primary.commit("first")
        let endpoint = try CodeCommitEndpoint(sandbox: scenario.sandbox, region: "eu-west-1", accessKey: Self.accessKey, secretKey: Self.secret)
        let target = try endpoint.repository("payments")
        try scenario.configure(secondaries: """
            - name: cc
              url: codecommit::eu-west-1://payments
              endpoint: \(endpoint.endpoint)
            """)

        let output = try scenario.gitmirror("sync", environment: environment(endpoint, secret: "canary-wrong-secret-value"))

        #expect(output.status == 1, "\(output)")
        #expect(try scenario.state("cc")?.lastErrorClass == .auth)
        #expect(try target.refs().isEmpty)
        #expect(endpoint.attempts.count <= 2, "\(endpoint.attempts)")
        #expect(endpoint.attempts.contains { $0.contains("signature does not match") })
        #expect(!output.combined.contains("canary-wrong-secret-value"))
    }

    @Test func expiredSignatureFailsWithAuth() throws {
        // Given an endpoint whose clock runs an hour ahead: every signature we make looks stale to it
        let scenario = try Scenario("codecommit-expired")
        try scenario.primary.commit("first")
        let endpoint = try CodeCommitEndpoint(sandbox: scenario.sandbox, region: "eu-west-1", accessKey: Self.accessKey, secretKey: Self.secret, skew: 3600)
        let target = try endpoint.repository("payments")
        try scenario.configure(secondaries: """
            - name: cc
              url: codecommit::eu-west-1://payments
              endpoint: \(endpoint.endpoint)
            """)

        let output = try scenario.gitmirror("sync", environment: environment(endpoint))

        #expect(output.status == 1, "\(output)")
        #expect(try scenario.state("cc")?.lastErrorClass == .auth)
        #expect(try target.refs().isEmpty)
        #expect(endpoint.attempts.count <= 2, "\(endpoint.attempts)")
        #expect(endpoint.attempts.contains { $0.contains("signature expired") })
    }
}

/// `create: true` against moto's CodeCommit API, with the endpoint serving what moto says exists.
@Suite(.onTestThreads) struct CodeCommitCreateTests {
    /// A scenario with a commit on its primary, moto's CodeCommit API, and a git endpoint serving the
    /// repositories moto says exist; `environment` reaches both with the test's keys.
    struct Stage {
        let scenario: Scenario
        let moto: MotoServer
        let endpoint: CodeCommitEndpoint
        var environment: [String: String]

        init(_ name: String) throws {
            scenario = try Scenario(name)
            try scenario.primary.commit("first")
            moto = try MotoServer(sandbox: scenario.sandbox)
            endpoint = try CodeCommitEndpoint(sandbox: scenario.sandbox, region: "eu-west-1", accessKey: CodeCommitTests.accessKey,
                                              secretKey: CodeCommitTests.secret, moto: moto)
            environment = CodeCommitTests().environment(endpoint)
            environment["AWS_ENDPOINT_URL"] = moto.url
        }
    }

    @Test func missingRepositoryIsCreatedThenMirrored() throws {
        // Given a CodeCommit secondary that does not exist yet, and create: true
        let stage = try Stage("codecommit-create")
        let (scenario, moto, endpoint) = (stage.scenario, stage.moto, stage.endpoint)
        try scenario.configure(secondaries: """
            - name: cc
              url: codecommit::eu-west-1://brand-new
              endpoint: \(endpoint.endpoint)
              create: true
            """)

        // When gitmirror syncs
        let output = try scenario.gitmirror("sync", environment: stage.environment)

        // Then the repository exists in CodeCommit's API and holds the primary's refs
        #expect(output.status == 0, "\(output)")
        #expect(try moto.python("print(client.get_repository(repositoryName='brand-new')['repositoryMetadata']['repositoryName'])") == "brand-new")
        let created = BareRepository(url: endpoint.root.appendingPathComponent("brand-new"))
        #expect(try created.refs() == scenario.primary.refs())
    }

    @Test func withoutCreateAMissingRepositoryIsNotFound() throws {
        let stage = try Stage("codecommit-missing")
        let (scenario, moto) = (stage.scenario, stage.moto)
        try scenario.configure(secondaries: "- name: cc\n  url: codecommit::eu-west-1://absent\n  endpoint: \(stage.endpoint.endpoint)")

        let output = try scenario.gitmirror("sync", environment: stage.environment)

        #expect(output.status == 1, "\(output)")
        #expect(try scenario.state("cc")?.lastErrorClass == .notFound)
        let probe = """
            try:
                client.get_repository(repositoryName="absent")
                print("exists")
            except client.exceptions.RepositoryDoesNotExistException:
                print("missing")
            """
        #expect(try moto.python(probe) == "missing")
    }
}
