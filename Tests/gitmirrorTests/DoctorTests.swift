import Foundation
import MirrorCore
import Testing
import TestSupport

/// `gitmirror doctor` against real servers: what it finds, and what it tells a user to do.
@Suite(.onTestThreads) struct DoctorTests {
    func findings(_ output: Shell.Output) throws -> [String: [String: Any]] {
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: rows.map { ($0["remote"] as? String ?? "", $0) })
    }

    @Test func reportsEveryRemoteAndFailsWhenOneWouldFail() throws {
        // Given a healthy git daemon secondary, an SSH server whose key is unknown,
        // a CodeCommit endpoint with keys in the environment, a missing CodeCommit repository
        // with create: true, and a port nobody listens on
        let (scenario, good) = try Scenario.withSecondary("doctor", named: "good")
        let ssh = try SSHServer(sandbox: scenario.sandbox)
        let unknownHosts = try scenario.sandbox.write("keys/known_hosts", "")
        let moto = try MotoServer(sandbox: scenario.sandbox)
        let endpoint = try CodeCommitEndpoint(sandbox: scenario.sandbox, region: "eu-west-1", accessKey: CodeCommitTests.accessKey,
                                              secretKey: CodeCommitTests.secret, moto: moto)
        _ = try endpoint.repository("payments")
        let closed = try Network.freePort()
        try scenario.configure(secondaries: """
            - name: good
              url: \(scenario.url(good))
            - name: ssh
              url: \(ssh.url(good.url))
              credentials: key
            - name: codecommit
              url: codecommit::eu-west-1://payments
              endpoint: \(endpoint.endpoint)
            - name: to-create
              url: codecommit::eu-west-1://not-yet
              endpoint: \(endpoint.endpoint)
              create: true
            - name: down
              url: git://127.0.0.1:\(closed)/down.git
            """, credentials: "key:\n  ssh_key: \(ssh.userKey.path)\n  known_hosts: \(unknownHosts.path)")
        var environment = CodeCommitTests().environment(endpoint)
        environment["AWS_ENDPOINT_URL"] = moto.url

        // When the user runs doctor
        let output = try scenario.gitmirror("doctor", "--json", environment: environment)
        let human = try scenario.gitmirror("doctor", environment: environment)

        // Then it exits 1 and says, remote by remote, what it found
        #expect(output.status == 1, "\(output)")
        let byRemote = try findings(output)
        #expect((byRemote["primary"]?["access"] as? String)?.hasPrefix("ok (1 ref") == true)
        #expect((byRemote["good"]?["access"] as? String)?.hasPrefix("ok") == true)
        let sshFailure = byRemote["ssh"]?["failure"] as? [String: Any]
        #expect(sshFailure?["error_class"] as? String == "host_key")
        #expect((sshFailure?["message"] as? String)?.contains(ssh.hostKeyFingerprint) == true)
        #expect(byRemote["codecommit"]?["credentials"] as? String == "AWS: environment variables")
        let details = byRemote["codecommit"]?["details"] as? [String] ?? []
        #expect(details.contains("CodeCommit payments in eu-west-1"))
        #expect(details.contains { $0.hasPrefix("clock skew ") && !$0.contains("unknown") }, "\(details)")
        #expect(byRemote["codecommit"]?["failure"] == nil)
        #expect(byRemote["to-create"]?["access"] as? String == "missing; create: true will create it")
        #expect((byRemote["down"]?["connect"] as? String)?.contains("Connection refused") == true)
        #expect(human.stdout.contains("→ confirm the fingerprint"))
        #expect(!human.combined.contains(CodeCommitTests.secret) && !output.combined.contains(CodeCommitTests.secret))
        // And it changed nothing
        #expect(try good.refs().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: endpoint.root.appendingPathComponent("not-yet").path))
        // Push access was asked of every reachable secondary, CodeCommit's included (its receive-pack answered)
        #expect((byRemote["good"]?["access"] as? String)?.hasSuffix(", push ok") == true, "\(byRemote["good"] ?? [:])")
        #expect((byRemote["codecommit"]?["access"] as? String)?.hasSuffix(", push ok") == true, "\(byRemote["codecommit"] ?? [:])")
    }

    @Test func aSecondaryThatCanBeReadButNotPushedToIsReadOnly() throws {
        // Given a secondary served by a git daemon without receive-pack (git daemon's default)
        let (scenario, target) = try Scenario.withSecondary("doctor-read-only", named: "target")
        let readOnly = try GitDaemon(sandbox: scenario.sandbox, root: scenario.served, receivePack: false)
        try scenario.configure(secondaries: "- name: backup\n  url: \(readOnly.url("target.git"))")

        // When doctor checks it
        let output = try scenario.gitmirror("doctor", "--json")
        let human = try scenario.gitmirror("doctor")

        // Then it is not "ready": it is read-only, with advice that fits git daemon
        #expect(output.status == 1, "\(output)")
        let backup = try #require(try findings(output)["backup"])
        #expect(backup["access"] as? String == "read-only", "\(backup)")
        let failure = backup["failure"] as? [String: Any]
        #expect(failure?["error_class"] as? String == "read_only", "\(backup)")
        #expect(human.stdout.contains("--enable=receive-pack"), "\(human)")
        #expect(!human.stdout.contains("Every remote is ready"), "\(human)")

        // And a sync says the same, rather than not_found
        let sync = try scenario.gitmirror("sync", "--json")
        #expect(sync.status == 1)
        #expect(try scenario.state("backup")?.lastErrorClass == .readOnly, "\(sync)")
        #expect(try target.refs().isEmpty)
    }
}
