import Foundation
import Synchronization
import MirrorCore
import Testing
import TestSupport

/// Servers that are down, silent, or refuse us: each failure gets its class, and the others carry on.
@Suite(.onTestThreads) struct FailureTests {
    /// The worker of a running `gitmirror sync` once the primary is in the cache, that is, once
    /// the sync is on its secondaries. Generous: the whole suite runs in parallel on two cores.
    func workerOnTheSecondaries(of sync: ChildProcess, _ scenario: Scenario, log: URL) throws -> Int32 {
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline {
            if (try? scenario.cache.refs()["refs/heads/main"]) ?? nil != nil,
               let worker = ProcessTable.gitmirrorProcesses().first(where: { $0.parent == sync.pid && $0.argv.contains("__worker") }) {
                return worker.pid
            }
            usleep(100_000)
        }
        throw TestError("no worker; running: \(sync.isRunning); log: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }

    @Test func oneSecondaryDownDoesNotStopTheOthers() throws {
        let (scenario, good) = try Scenario.withSecondary("down", named: "good")
        let closedPort = try Network.freePort()
        try scenario.configure(secondaries: """
            - name: down
              url: git://127.0.0.1:\(closedPort)/nothing.git
            - name: good
              url: \(scenario.url(good))
            """)

        let output = try scenario.gitmirror("sync")

        #expect(output.status == 1, "\(output)")
        #expect(try good.refs() == scenario.primary.refs())
        #expect(try scenario.state("down")?.lastErrorClass == .network)
        #expect(try scenario.state("down")?.state == .failing)
        #expect(try scenario.state("good")?.state == .ok)
    }

    @Test func silentServerTimesOutWithinTheStallLimitAndLeaksNoSecret() throws {
        // Given a server that accepts connections and never answers, reached with a token
        let (scenario, good) = try Scenario.withSecondary("silent", named: "good")
        let silent = try SilentServer(sandbox: scenario.sandbox)
        let canary = "canary-token-silent-5512"
        try scenario.configure(secondaries: """
            - name: silent
              url: https://127.0.0.1:\(silent.port)/repo.git
              credentials: token
              stall_timeout: 2s
            - name: good
              url: \(scenario.url(good))
            """, credentials: "token:\n  token_env: GITMIRROR_TEST_CANARY")

        // When gitmirror syncs, and while its worker hangs we read every process's argv and environment
        let started = Date()
        let box = Mutex<Shell.Output?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let output = try? scenario.gitmirror("sync", environment: ["GITMIRROR_TEST_CANARY": canary])
            box.withLock { $0 = output }
            done.signal()
        }
        var sawWorker = false
        var statusWhileSyncing: Shell.Output?
        var leaks: [String] = []
        while done.wait(timeout: .now() + 0.2) == .timedOut {
            if sawWorker && statusWhileSyncing == nil { statusWhileSyncing = try scenario.gitmirror("status") }
            for (pid, _, argv, environment) in ProcessTable.gitmirrorProcesses() {
                if argv.contains("__worker") { sawWorker = true }
                if argv.contains(canary) { leaks.append("argv of \(pid)") }
                if environment.contains(canary) && argv.contains("__worker") { leaks.append("environment of worker \(pid)") }
            }
        }
        let elapsed = Date().timeIntervalSince(started)
        let output = try #require(box.withLock { $0 })

        // Then the silent secondary fails with timeout within stall_timeout plus a few seconds
        #expect(output.status == 1, "\(output)")
        #expect(elapsed < 15, "took \(elapsed)s")
        #expect(try scenario.state("silent")?.lastErrorClass == .timeout)
        #expect(try good.refs() == scenario.primary.refs())
        // And the token was in no worker's argv or environment, nor in the output
        #expect(sawWorker)
        #expect(leaks.isEmpty, "\(leaks)")
        // And status answered while the sync was running
        #expect(statusWhileSyncing?.status == 0, "\(String(describing: statusWhileSyncing))")
        #expect(!output.combined.contains(canary))
    }

    @Test func wrongPasswordCostsOneAttempt() throws {
        let (scenario, target) = try Scenario.withSecondary("wrong-password", named: "target")
        let https = try HTTPSServer(sandbox: scenario.sandbox, root: scenario.served, user: "mirror", password: "the-right-one")
        let wrong = "canary-wrong-password-9931"
        try scenario.configureWeb(https.url("target.git"), password: wrong, trusting: https.authority.certificate)

        let output = try scenario.gitmirror("sync")

        #expect(output.status == 1, "\(output)")
        #expect(try scenario.state("web")?.lastErrorClass == .auth)
        #expect(try target.refs().isEmpty)
        // One request with the (wrong) password — the seed's question for the empty secondary's refs,
        // after which the push does not ask again: not fifteen.
        #expect(https.requests(status: 401) == 1, "\(https.accessLogText)")
        #expect(!output.combined.contains(wrong))
        #expect(try scenario.state("web")?.lastError?.contains(wrong) == false)
    }

    @Test func invalidCertificateIsRefused() throws {
        // Given an HTTPS server whose CA the configuration does not trust
        let (scenario, target) = try Scenario.withSecondary("bad-cert", named: "target")
        let https = try HTTPSServer(sandbox: scenario.sandbox, root: scenario.served, user: "mirror", password: "pw-cert-test")
        try scenario.configureWeb(https.url("target.git"), password: "pw-cert-test")

        let output = try scenario.gitmirror("sync")

        // Then the connection is refused before any credential is sent
        #expect(output.status == 1, "\(output)")
        #expect(try scenario.state("web")?.lastErrorClass == .tls)
        #expect(try target.refs().isEmpty)
        #expect(!https.accessLogText.contains("mirror"), "\(https.accessLogText)")
    }

    /// Syncs to the SSH server trusting only `knownHosts`; expects exit 1 and returns the remote's state.
    func syncRefused(_ scenario: Scenario, target: BareRepository, ssh: SSHServer, knownHosts: URL) throws -> RemoteState {
        try scenario.configureSSH(ssh.url(target.url), key: ssh.userKey, knownHosts: knownHosts)
        let output = try scenario.gitmirror("sync")
        #expect(output.status == 1, "\(output)")
        return try #require(try scenario.state("ssh"))
    }

    @Test func unknownSSHHostKeyIsRefusedWithItsFingerprint() throws {
        let (scenario, target) = try Scenario.withSecondary("unknown-host", named: "target")
        let ssh = try SSHServer(sandbox: scenario.sandbox)
        let emptyKnownHosts = try scenario.sandbox.write("keys/known_hosts", "# nothing trusted yet\n")

        let state = try syncRefused(scenario, target: target, ssh: ssh, knownHosts: emptyKnownHosts)

        #expect(state.lastErrorClass == .hostKey)
        #expect(state.lastError?.contains(ssh.hostKeyFingerprint) == true, "\(state.lastError ?? "")")
        #expect(state.lastError?.contains("[127.0.0.1]:\(ssh.port)") == true)
        #expect(try target.refs().isEmpty)
    }

    @Test func changedSSHHostKeyIsRefused() throws {
        let (scenario, target) = try Scenario.withSecondary("changed-host", named: "target")
        let ssh = try SSHServer(sandbox: scenario.sandbox)
        // known_hosts names this host, but with another key
        let otherKey = scenario.sandbox.path("keys/other")
        try FileManager.default.createDirectory(at: otherKey.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Shell.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", otherKey.path])
        let other = try String(contentsOf: otherKey.appendingPathExtension("pub"), encoding: .utf8).split(separator: " ")
        let knownHosts = try scenario.sandbox.write("keys/known_hosts", "[127.0.0.1]:\(ssh.port) \(other[0]) \(other[1])\n")

        let state = try syncRefused(scenario, target: target, ssh: ssh, knownHosts: knownHosts)

        #expect(state.lastErrorClass == .hostKey)
        #expect(state.lastError?.contains("does not match") == true)
        #expect(state.lastError?.contains(ssh.hostKeyFingerprint) == true)
    }

    @Test func aKeyTheServerDoesNotAuthorizeIsAuthAfterOneAttempt() throws {
        // Given an SSH secondary and a well-formed ed25519 key that the server does not authorize
        let (scenario, target) = try Scenario.withSecondary("ssh-wrong-key", named: "target")
        let ssh = try SSHServer(sandbox: scenario.sandbox)
        let stranger = try scenario.sandbox.directory("strangers").appendingPathComponent("key")
        try Shell.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "not authorized", "-f", stranger.path])
        try scenario.configure(secondaries: "- name: ssh\n  url: \(ssh.url(target.url))\n  credentials: key",
                               credentials: "key:\n  ssh_key: \(stranger.path)\n  known_hosts: \(ssh.knownHosts.path)")

        // When gitmirror syncs
        let started = Date()
        let output = try scenario.gitmirror("sync")

        // Then the secondary fails as auth, quickly (the key is offered once, not retried forever), and gets nothing
        #expect(output.status == 1, "\(output)")
        #expect(try scenario.state("ssh")?.lastErrorClass == .auth, "\(output)")
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(try target.refs().isEmpty)
        let offers = ((try? String(contentsOf: ssh.log, encoding: .utf8)) ?? "").components(separatedBy: "Failed publickey").count - 1
        #expect(offers <= 2, "the key was offered \(offers) times")
    }

    @Test func scpLikeURLReachesAnSSHServer() throws {
        // scp-like URLs carry no port: the server listens on port 22 of a loopback address of its own
        let (scenario, target) = try Scenario.withSecondary("scp-like", named: "target")
        let host = "127.0.\(Int.random(in: 1...250)).\(Int.random(in: 2...250))"
        let ssh = try SSHServer(sandbox: scenario.sandbox, host: host, port: 22)
        try scenario.configureSSH(ssh.scpURL(target.url), key: ssh.userKey, knownHosts: ssh.knownHosts)

        let output = try scenario.gitmirror("sync")

        #expect(output.status == 0, "\(output)")
        #expect(try target.refs() == scenario.primary.refs())
    }

    @Test func ctrlCStopsTheSyncRecordsTheRunInterruptedAndExits130() throws {
        // Given a sync of two repositories, one at a time (one connection), the first hanging on a silent secondary
        let (scenario, laterBackup) = try Scenario.withSecondary("interrupted", named: "later-backup")
        let silent = try SilentServer(sandbox: scenario.sandbox)
        try scenario.configure(repositories: [
            .init("app", primary: scenario.url(scenario.primary),
                  secondaries: [#"{name: silent, url: "git://127.0.0.1:\#(silent.port)/repo.git", stall_timeout: 5m}"#]),
            .init("later", primary: scenario.url(scenario.primary), secondaries: [#"{name: backup, url: "\#(scenario.url(laterBackup))"}"#]),
        ], daemon: "max_connections: 1")
        let log = scenario.sandbox.path("interrupted-sync.log")
        let sync = try Shell.start([Gitmirror.executable.path, "sync", "--jobs", "1", "--config", scenario.config.path], log: log)
        let hungWorker = try workerOnTheSecondaries(of: sync, scenario, log: log)

        // When Ctrl-C reaches the process group, as from a terminal
        sync.signalGroup(SIGINT)
        let status = sync.wait()

        // Then gitmirror exits 130; the worker left the signal to its supervisor, which stopped it;
        // the run is recorded as interrupted, no lease is left, the second repository was never
        // started, and the worker is gone
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(status == 130, "\(output)")
        #expect(output.contains("app/silent: interrupted: secondary 'silent'") && output.contains("gitmirror was stopped (Ctrl-C or SIGTERM) during this operation"), "\(output)")
        #expect(output.contains("later/primary: interrupted: gitmirror is shutting down; this repository was not started"), "\(output)")
        #expect(!output.contains("failed (timeout)") && !output.contains("timeout:"), "\(output)")
        let runs = try scenario.store().runs(repository: "app")
        #expect(runs.first?.result == .interrupted, "\(runs)")
        // An interruption is no verdict on the remote: no state row says it is failing
        #expect(try scenario.state("silent") == nil)
        #expect(try scenario.store().lease(repository: "app") == nil)
        #expect(try scenario.store().runs(repository: "later").isEmpty)
        #expect(try laterBackup.refs().isEmpty)
        #expect(eventually(within: 5) { !ProcessTable.gitmirrorProcesses().contains { $0.pid == hungWorker && $0.argv.contains("__worker") } })
    }

    @Test func aWorkerWhoseSupervisorIsAlreadyGoneExitsAtOnce() throws {
        // Given a worker started for a supervisor that is not (or no longer) its parent
        let started = Date()
        let output = try Shell.run([Gitmirror.executable.path, "__worker", "--supervisor", "1"], input: "", check: false)

        // Then it exits with status 3 without waiting for a job
        #expect(output.status == 3, "\(output)")
        #expect(Date().timeIntervalSince(started) < 5)
    }

    @Test func lockLeftByAKilledSyncIsTakenOver() throws {
        // Given a sync hanging on a silent server, killed with SIGKILL while it holds the lock
        let (scenario, good) = try Scenario.withSecondary("killed", named: "good")
        let silent = try SilentServer(sandbox: scenario.sandbox)
        try scenario.configure(secondaries: "- name: silent\n  url: git://127.0.0.1:\(silent.port)/repo.git\n  stall_timeout: 5m")
        let log = scenario.sandbox.path("killed-sync.log")
        let hung = try Shell.start([Gitmirror.executable.path, "sync", "--config", scenario.config.path], log: log)
        let silentWorker = try workerOnTheSecondaries(of: hung, scenario, log: log)
        #expect(try scenario.store().lease(repository: "app")?.pid == hung.pid)
        hung.signal(SIGKILL)
        hung.wait()

        // When the next sync runs (the silent secondary replaced by a working one)
        try scenario.configure(secondaries: "- name: good\n  url: \(scenario.url(good))")
        let output = try scenario.gitmirror("sync", "--lock-wait", "5s")

        // Then it takes the lock over, the killed run is marked interrupted, and its worker is gone
        #expect(output.status == 0, "\(output)")
        #expect(try good.refs() == scenario.primary.refs())
        let runs = try scenario.store().runs(repository: "app")
        #expect(runs.contains { $0.pid == hung.pid && $0.result == .interrupted })
        #expect(try scenario.store().lease(repository: "app") == nil)
        // Its worker noticed and exited (it polls for its parent every quarter second)
        #expect(eventually(within: 5) { !ProcessTable.gitmirrorProcesses().contains { $0.pid == silentWorker && $0.argv.contains("__worker") } })
    }
}
