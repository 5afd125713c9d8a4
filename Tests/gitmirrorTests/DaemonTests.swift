import Foundation
import MirrorCore
import Testing
import TestSupport

/// `gitmirror daemon` as a process against real git servers on loopback.
@Suite(.onTestThreads) struct DaemonTests {
    static let hookSecret = "canary-github-hook-secret-55"
    static let syncToken = "canary-sync-token-77"

    func githubSignature(_ body: String, secret: String = DaemonTests.hookSecret) -> String {
        Webhooks.sign(Array(body.utf8), secret: secret)
    }

    func runs(_ scenario: Scenario) throws -> [SyncRun] { try scenario.store().runs(repository: "app") }

    @Test func webhookAfterAPushReachesEverySecondaryWithinTwoSeconds() throws {
        // Given a daemon with a long interval, already ready
        let scenario = try Scenario("daemon-webhook")
        try scenario.primary.commit("first")
        let one = try scenario.secondary("one"), two = try scenario.secondary("two")
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))\n- name: two\n  url: \(scenario.url(two))",
                               daemon: "interval: 1h\nhooks:\n  github_secret_env: HOOK_SECRET")
        let daemon = try scenario.startDaemon(environment: ["HOOK_SECRET": Self.hookSecret])
        #expect(eventually(within: 40) { try one.refs() == scenario.primary.refs() })

        // When the primary gets a commit and GitHub sends its push event
        let head = try scenario.primary.commit("second")
        let payload = #"{"ref": "refs/heads/main", "repository": {"full_name": "acme/app", "clone_url": "\#(scenario.url(scenario.primary))"}}"#
        let started = Date()
        let response = try daemon.post("/hooks/github", body: payload,
                                       headers: ["X-Hub-Signature-256": githubSignature(payload), "X-GitHub-Event": "push"])

        // Then both secondaries have it within two seconds
        #expect(response.status == 202, "\(response.text)")
        #expect(eventually(within: 2) { try one.refs()["refs/heads/main"] == head && two.refs()["refs/heads/main"] == head },
                "\(daemon.logText)")
        #expect(Date().timeIntervalSince(started) < 3)
        #expect(try runs(scenario).contains { $0.trigger == "github" })
        #expect(!daemon.logText.contains(Self.hookSecret))
    }

    @Test func badSignatureIsRefusedAndNothingRuns() throws {
        let (scenario, one) = try Scenario.withSecondary("daemon-bad-hmac", named: "one")
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))",
                               daemon: "interval: 1h\nhooks:\n  github_secret_env: HOOK_SECRET\n  sync_token_env: SYNC_TOKEN")
        let daemon = try DaemonProcess(sandbox: scenario.sandbox, config: scenario.config,
                                       environment: ["HOOK_SECRET": Self.hookSecret, "SYNC_TOKEN": Self.syncToken])
        try daemon.waitUntilReady()
        let payload = #"{"repository": {"full_name": "acme/app", "clone_url": "\#(scenario.url(scenario.primary))"}}"#

        let forged = try daemon.post("/hooks/github", body: payload, headers: ["X-Hub-Signature-256": githubSignature(payload, secret: "guess"),
                                                                               "X-GitHub-Event": "push"])
        let unsigned = try daemon.post("/hooks/github", body: payload)
        let wrongToken = try daemon.post("/hooks/sync/app", headers: ["Authorization": "Bearer nope"])
        let unknown = try daemon.post("/hooks/sync/nope", headers: ["Authorization": "Bearer \(Self.syncToken)"])

        #expect(forged.status == 401 && unsigned.status == 401 && wrongToken.status == 401)
        #expect(unknown.status == 404)
        // Every refusal is logged with the hook, the event and the sender; an unverified body is never parsed to name a repository
        #expect(eventually(within: 10) { daemon.logText.components(separatedBy: "hook refused").count - 1 == 4 }, "\(daemon.logText)")
        let refusals = daemon.logText.split(separator: "\n").filter { $0.contains("hook refused") }
        // A refusal is answered before anything is scheduled: no run but the schedule's
        #expect(try runs(scenario).allSatisfy { $0.trigger == "schedule" })
        #expect(refusals.contains { $0.contains("status=401") && $0.contains("hook=github") && $0.contains("event=push")
                                    && $0.contains("repository=-") && $0.contains("peer=127.0.0.1:") }, "\(refusals)")
        #expect(!refusals.contains { $0.contains("acme/app") }, "\(refusals)")
        #expect(refusals.contains { $0.contains("status=404") && $0.contains("hook=api") && $0.contains("repository=nope") }, "\(refusals)")
    }

    @Test func eitherShardAcceptsEveryHookAndForwardsItToTheOwner() throws {
        // Given two shards (each its own state folder) of a file with one repository per shard
        let scenario = try Scenario("daemon-shards")
        let shards = [Shard(index: 0, count: 2), Shard(index: 1, count: 2)]
        let names = ["app", "web", "api", "docs", "site", "blog", "shop"]
        let mine = try #require(names.first { shards[0].owns($0) }), theirs = try #require(names.first { shards[1].owns($0) })
        let primaries = [mine: scenario.primary, theirs: try BareRepository.create(at: scenario.served.appendingPathComponent("other.git"))]
        let backups = [mine: try scenario.secondary("backup-mine"), theirs: try scenario.secondary("backup-theirs")]
        for primary in primaries.values { try primary.commit("first") }
        let ports = [try Network.freePort(), try Network.freePort()]
        var configs: [URL] = []
        for shard in shards {
            let text = """
                state_dir: state-\(shard.index)
                daemon:
                  interval: 1h
                  start_spread: 0s
                  peers: [\(ports.map { "http://127.0.0.1:\($0)" }.joined(separator: ", "))]
                  hooks: {github_secret_env: HOOK_SECRET, sync_token_env: SYNC_TOKEN}
                repositories:
                \([mine, theirs].map { "  - {name: \($0), primary: '\(scenario.url(primaries[$0]!))', secondaries: [{name: backup, url: '\(scenario.url(backups[$0]!))'}]}" }.joined(separator: "\n"))

                """
            configs.append(try scenario.sandbox.write("mirrors-\(shard.index).yaml", text))
        }
        let environment = ["HOOK_SECRET": Self.hookSecret, "SYNC_TOKEN": Self.syncToken]
        let daemons = try shards.map { shard in
            try DaemonProcess(sandbox: scenario.sandbox, config: configs[shard.index], environment: environment,
                              port: ports[shard.index], arguments: ["--shard", "\(shard.index)/2"])
        }
        for daemon in daemons { try daemon.waitUntilReady() }
        // (each shard's first scheduled run is over, so the push below is mirrored by the hook's run alone)
        for (index, name) in [(0, mine), (1, theirs)] {
            #expect(eventually(within: 20) { try Gitmirror.store(configs[index]).runs(repository: name).contains { $0.trigger == "schedule" && $0.result == .ok } })
        }

        // When GitHub's push event for shard 1's repository reaches shard 0 (the Service balanced it there)
        let head = try primaries[theirs]!.commit("second")
        let payload = #"{"ref": "refs/heads/main", "repository": {"full_name": "acme/\#(theirs)", "clone_url": "\#(scenario.url(primaries[theirs]!))"}}"#
        let response = try daemons[0].post("/hooks/github", body: payload,
                                           headers: ["X-Hub-Signature-256": githubSignature(payload), "X-GitHub-Event": "push"])

        // Then shard 0 answers 202, having forwarded it, and shard 1 mirrors it at once, as a GitHub-triggered run
        #expect(response.status == 202, "\(response.text)")
        #expect(response.text.contains("forwarded to shard 1"), "\(response.text)")
        #expect(eventually(within: 5) { try backups[theirs]!.refs()["refs/heads/main"] == head }, "\(daemons[1].logText)")
        #expect(try Gitmirror.store(configs[1]).runs(repository: theirs).contains { $0.trigger == "github" })
        #expect(try Gitmirror.store(configs[0]).runs(repository: theirs).isEmpty)

        // And the sync API works the other way round
        let next = try primaries[mine]!.commit("third")
        let api = try daemons[1].post("/hooks/sync/\(mine)", headers: ["Authorization": "Bearer \(Self.syncToken)"])
        #expect(api.status == 202 && api.text.contains("forwarded to shard 0"), "\(api.text)")
        #expect(eventually(within: 5) { try backups[mine]!.refs()["refs/heads/main"] == next }, "\(daemons[0].logText)")
        #expect(try Gitmirror.store(configs[0]).runs(repository: mine).contains { $0.trigger == "api" })

        // A forged hook is refused where it arrives and goes nowhere
        let forged = try daemons[0].post("/hooks/github", body: payload, headers: ["X-Hub-Signature-256": githubSignature(payload, secret: "guess")])
        #expect(forged.status == 401)
        #expect(daemons[1].logText.split(separator: "\n").filter { $0.contains("hook refused") }.isEmpty)

        // An owner that cannot be reached is a failed delivery (502, so the forge can redeliver), not a silent 202
        // (a new push: the one above was delivered, and a delivery runs once)
        daemons[1].stop()
        let later = payload.replacingOccurrences(of: #""ref": "refs/heads/main""#, with: #""ref": "refs/heads/main", "after": "2""#)
        let lost = try daemons[0].post("/hooks/github", body: later, headers: ["X-Hub-Signature-256": githubSignature(later), "X-GitHub-Event": "push"])
        #expect(lost.status == 502, "\(lost.text)")
        #expect(lost.text.contains("shard 1 could not be reached"), "\(lost.text)")
        #expect(!daemons[0].logText.contains(Self.hookSecret) && !daemons[0].logText.contains(Self.syncToken))
    }

    @Test func peersThatDisagreeWithTheShardsAreRefusedAtStart() throws {
        let scenario = try Scenario("daemon-peers-count")
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(try scenario.secondary("one")))",
                               daemon: "peers: [http://gitmirror-0.gitmirror-peers:9150]")
        let output = try Shell.run([Gitmirror.executable.path, "daemon", "--config", scenario.config.path, "--listen", "127.0.0.1:\(try Network.freePort())",
                                    "--shard", "0/2"], check: false)
        #expect(output.status == 2, "\(output)")
        #expect(output.stderr.contains("daemon.peers lists 1 URL but --shard 0/2 says there are 2 shards"), "\(output)")
        // A pod whose ordinal is past N (replicas raised without N) refuses to start rather than own nothing
        let pod = try Shell.run([Gitmirror.executable.path, "daemon", "--config", scenario.config.path, "--shard", "auto/2"],
                                environment: ProcessInfo.processInfo.environment.merging(["HOSTNAME": "gitmirror-2"]) { $1 }, check: false)
        #expect(pod.status == 64, "\(pod)")
        #expect(pod.stderr.contains("ordinal 2, but there are only 2 shards"), "\(pod)")
    }

    @Test func intervalScheduleFiresAgain() throws {
        let (scenario, one) = try Scenario.withSecondary("daemon-interval", named: "one")
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))", daemon: "interval: 10s")
        let daemon = try scenario.startDaemon()

        // The first run comes within a tenth of the interval, the next one at the repository's slot in
        // the interval (its phase, from the Unix epoch), at least half an interval later
        #expect(eventually(within: 30, every: 0.5) { try runs(scenario).filter { $0.trigger == "schedule" && $0.result == .ok }.count >= 2 },
                "\(daemon.logText)")
        let starts = try runs(scenario).map(\.startedAt).sorted()
        #expect(starts.count >= 2 && starts[1].timeIntervalSince(starts[0]) >= 4.9, "\(starts)")
        let offset = (starts.last!.timeIntervalSince1970 - Scheduler.Timing.phase(of: "app") * 10).truncatingRemainder(dividingBy: 10)
        #expect(offset < 1.5 || offset > 9.5, "\(starts) phase \(Scheduler.Timing.phase(of: "app"))")
        // And a push on the primary arrives with the next scheduled run
        let head = try scenario.primary.commit("second")
        #expect(eventually(within: 15, every: 0.5) { try one.refs()["refs/heads/main"] == head })
    }

    /// The policy (1 s, 2 s, 4 s, …, the cap for lasting failures, coalescing) is tested in process in
    /// SchedulerTests on a moved clock; this is the daemon end to end: status shows the backoff, and a
    /// recovered server resets it to the interval.
    @Test func backoffShowsInStatusAndResetsOnSuccess() throws {
        // Given a secondary whose server is down, a 1s retry base and a long interval
        let scenario = try Scenario("daemon-backoff")
        try scenario.primary.commit("first")
        let later = try scenario.sandbox.directory("later")
        let target = try BareRepository.create(at: later.appendingPathComponent("target.git"))
        let port = try Network.freePort()
        try scenario.configure(secondaries: "- name: down\n  url: git://127.0.0.1:\(port)/target.git",
                               daemon: "interval: 1h\nretry_base: 1s\nretry_cap: 1h")
        let daemon = try scenario.startDaemon()

        // Then failed runs repeat and status says why the next one waits
        #expect(eventually(within: 30, every: 0.2) { try runs(scenario).filter { $0.result == .failed }.count >= 2 }, "\(daemon.logText)")
        let status = try scenario.gitmirror("status", "--json")
        #expect(status.stdout.contains("backing off after"), "\(status.stdout)")

        // When the server comes up, the next retry succeeds and the backoff resets to the interval: the
        // next run is the repository's slot, at least half an interval on
        _ = try GitDaemon(sandbox: scenario.sandbox, root: later, port: port)
        #expect(eventually(within: 30, every: 0.2) { try target.refs() == scenario.primary.refs() }, "\(daemon.logText)")
        #expect(eventually(within: 5) {
            let rows = try JSONSerialization.jsonObject(with: Data(try scenario.gitmirror("status", "--json").stdout.utf8)) as? [[String: Any]] ?? []
            let primary = rows.first { $0["role"] as? String == "primary" }
            guard let next = primary?["next_run"] as? String, let date = ISO8601DateFormatter().date(from: next) else { return false }
            return date.timeIntervalSinceNow > 29 * 60
        })
    }

    @Test func sighupWithABrokenFileKeepsTheOldConfiguration() throws {
        let (scenario, one) = try Scenario.withSecondary("daemon-sighup", named: "one")
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))",
                               daemon: "interval: 1h\nhooks:\n  sync_token_env: SYNC_TOKEN")
        let daemon = try scenario.startDaemon(environment: ["SYNC_TOKEN": Self.syncToken])
        func loadedAt() throws -> Double? {
            try daemon.get("/metrics").text.split(separator: "\n").first { $0.hasPrefix("gitmirror_config_last_reload_success_timestamp_seconds ") }
                .flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        let started = try #require(try loadedAt())

        // When mirrors.yaml is broken and the daemon gets SIGHUP
        let good = try String(contentsOf: scenario.config, encoding: .utf8)
        try (good + "\nnonsense: [\n").write(to: scenario.config, atomically: true, encoding: .utf8)
        daemon.process.signal(SIGHUP)

        // Then it logs the errors, counts a failed reload, and keeps serving the old configuration
        // (the daemon also notices the changed file by itself: one reload or two)
        #expect(eventually(within: 5) { try daemon.get("/metrics").text.contains(#"gitmirror_config_reloads_total{result="error"} "#) })
        #expect(daemon.process.isRunning)
        #expect(eventually(within: 5) { daemon.logText.contains("the new configuration is invalid") }, "\(daemon.logText)")
        let head = try scenario.primary.commit("second")
        #expect(try daemon.post("/hooks/sync/app", headers: ["Authorization": "Bearer \(Self.syncToken)"]).status == 202)
        #expect(eventually(within: 5) { try one.refs()["refs/heads/main"] == head })

        // And a fixed file is applied on the next SIGHUP
        try good.write(to: scenario.config, atomically: true, encoding: .utf8)
        daemon.process.signal(SIGHUP)
        #expect(eventually(within: 5) { try daemon.get("/metrics").text.contains(#"gitmirror_config_reloads_total{result="success"} "#) })
        // and the time of the last successful load moved (the failed one did not move it)
        #expect(try loadedAt() ?? 0 > started)
    }

    @Test func aConfigMapUpdateIsReloadedWithoutASignal() throws {
        // Given the daemon reading mirrors.yaml from a ConfigMap folder as kubelet lays it out:
        // mirrors.yaml -> ..data/mirrors.yaml, ..data -> ..<timestamp>
        let (scenario, one) = try Scenario.withSecondary("daemon-configmap", named: "one")
        let two = try scenario.secondary("two")
        let daemonSettings = "interval: 1h\nhooks:\n  sync_token_env: SYNC_TOKEN"
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))", daemon: daemonSettings)
        let first = try String(contentsOf: scenario.config, encoding: .utf8)
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))\n- name: two\n  url: \(scenario.url(two))", daemon: daemonSettings)
        let second = try String(contentsOf: scenario.config, encoding: .utf8)
        let folder = try scenario.sandbox.directory("configmap")
        func publish(_ text: String, as version: String) throws {
            let stamped = folder.appendingPathComponent("..\(version)")
            try FileManager.default.createDirectory(at: stamped, withIntermediateDirectories: true)
            try text.write(to: stamped.appendingPathComponent("mirrors.yaml"), atomically: true, encoding: .utf8)
            let next = folder.appendingPathComponent("..data_tmp").path
            try? FileManager.default.removeItem(atPath: next)
            try FileManager.default.createSymbolicLink(atPath: next, withDestinationPath: "..\(version)")
            guard rename(next, folder.appendingPathComponent("..data").path) == 0 else { throw SyncFailure(.internal, "rename") }
        }
        try publish(first, as: "2026_11_22_10_00_00.1")
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("mirrors.yaml").path, withDestinationPath: "..data/mirrors.yaml")
        let daemon = try DaemonProcess(sandbox: scenario.sandbox, config: folder.appendingPathComponent("mirrors.yaml"),
                                       environment: ["SYNC_TOKEN": Self.syncToken])
        try daemon.waitUntilReady()

        // When kubelet swaps in a version that adds a secondary, and nobody sends a signal
        try publish(second, as: "2026_11_22_10_05_00.2")

        // Then the daemon reloads it by itself, and the next sync mirrors to the new secondary
        #expect(eventually(within: 10) { try daemon.get("/metrics").text.contains(#"gitmirror_config_reloads_total{result="success"} 1"#) },
                "\(daemon.logText)")
        #expect(try daemon.post("/hooks/sync/app", headers: ["Authorization": "Bearer \(Self.syncToken)"]).status == 202)
        #expect(eventually(within: 10, every: 0.2) { try two.refs() == scenario.primary.refs() && one.refs() == scenario.primary.refs() },
                "\(daemon.logText)")

        // And a broken version is refused, logged, and the running configuration kept
        try publish("repositories: [\n", as: "2026_11_22_10_10_00.3")
        #expect(eventually(within: 10) { try daemon.get("/metrics").text.contains(#"gitmirror_config_reloads_total{result="error"} 1"#) })
        #expect(daemon.process.isRunning)
        #expect(eventually(within: 5) { daemon.logText.contains("the new configuration is invalid") }, "\(daemon.logText)")
    }

    @Test func sigtermDuringASlowPushExitsCleanlyWithinTheGracePeriod() throws {
        // Given a sync hanging on a silent secondary
        let scenario = try Scenario("daemon-sigterm")
        try scenario.primary.commit("first")
        let silent = try SilentServer(sandbox: scenario.sandbox)
        try scenario.configure(secondaries: "- name: silent\n  url: git://127.0.0.1:\(silent.port)/repo.git\n  stall_timeout: 5m",
                               daemon: "interval: 10s\nshutdown_grace: 2s")
        let daemon = try scenario.startDaemon()
        #expect(eventually(within: 20) { try runs(scenario).contains { $0.result == .running } })
        #expect(eventually(within: 20) { Network.establishedConnections(toPort: silent.port) >= 1 })

        // When it gets SIGTERM
        let started = Date()
        daemon.process.signal(SIGTERM)
        let status = daemon.process.wait()

        // Then it exits 0 within the grace period plus a little, the run is recorded as interrupted, no lease is left
        #expect(status == 0, "\(daemon.logText)")
        #expect(Date().timeIntervalSince(started) < 8)
        let results = try runs(scenario).map(\.result)
        #expect(results.first == .interrupted, "\(results)")
        #expect(try scenario.store().lease(repository: "app") == nil)
    }

    @Test func aRestartDuringAPushIsNotAFailure() throws {
        // Given a secondary in step (a manual sync), a notify target, and a push that will hang in its pre-receive hook
        let (scenario, one) = try Scenario.withSecondary("daemon-restart", named: "one")
        let receiver = try NotifyReceiver(sandbox: scenario.sandbox)
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))",
                               daemon: "interval: 1h\nshutdown_grace: 1s\nhooks:\n  sync_token_env: SYNC_TOKEN\nnotify:\n  - url: \(receiver.url)")
        #expect(try scenario.gitmirror("sync").status == 0)
        try one.installHook("pre-receive", "#!/bin/sh\nsleep 20\n")
        let head = try scenario.primary.commit("second")
        let environment = ["SYNC_TOKEN": Self.syncToken]
        let first = try scenario.startDaemon(environment: environment)
        #expect(eventually(within: 20) { try runs(scenario).contains { $0.result == .running && $0.trigger == "schedule" } })
        #expect(eventually(within: 20) { !ProcessTable.processes(argvContaining: "hooks/pre-receive").isEmpty })

        // When the daemon is restarted (SIGTERM, the grace period ends while the push waits)
        first.process.signal(SIGTERM)
        #expect(first.process.wait() == 0, "\(first.logText)")

        // Then the run is interrupted, the remote's state is still ok, and no backoff or alert followed
        #expect(try runs(scenario).first?.result == .interrupted)
        let state = try #require(try scenario.state("one"))
        #expect(state.state == .ok && state.lastErrorClass == nil, "\(state)")
        #expect(!first.logText.contains("backing off") && !first.logText.contains("error_class"), "\(first.logText)")

        // And the next start runs it at once, though first runs are now spread over an hour, with no alert either way
        try FileManager.default.removeItem(atPath: one.path + "/hooks/pre-receive")
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))",
                               daemon: "interval: 1h\nstart_spread: 1h\nshutdown_grace: 1s\nhooks:\n  sync_token_env: SYNC_TOKEN\nnotify:\n  - url: \(receiver.url)")
        let second = try DaemonProcess(sandbox: scenario.sandbox, config: scenario.config, environment: environment)
        #expect(eventually(within: 5) { try one.refs()["refs/heads/main"] == head }, "\(second.logText)")
        #expect(eventually(within: 5) { try runs(scenario).first?.result == .ok })
        // "in step" is logged after the notifier decided (synchronously) that there is nothing to send
        #expect(eventually(within: 5) { second.logText.contains("in step") })
        #expect(receiver.events.isEmpty, "\(receiver.events.map(\.body))")

        // And a daemon killed outright leaves a run "running": the next start, on the same port while the killed
        // one's push still hangs, binds it (no worker or git process holds the listening socket) and records the run as interrupted
        try one.installHook("pre-receive", "#!/bin/sh\nsleep 20\n")
        let third = try scenario.primary.commit("third")
        #expect(try second.post("/hooks/sync/app", headers: ["Authorization": "Bearer \(Self.syncToken)"]).status == 202)
        #expect(eventually(within: 10) { try runs(scenario).first?.result == .running })
        let killed = try #require(try runs(scenario).first)
        second.stop()
        try FileManager.default.removeItem(atPath: one.path + "/hooks/pre-receive")
        let restarted = try DaemonProcess(sandbox: scenario.sandbox, config: scenario.config, environment: environment, port: second.port)
        #expect(eventually(within: 5) { try one.refs()["refs/heads/main"] == third }, "\(restarted.logText)")
        #expect(try runs(scenario).first { $0.id == killed.id }?.result == .interrupted)
        #expect(restarted.logText.contains("a run left running by a stopped process is recorded as interrupted"), "\(restarted.logText)")
        #expect(receiver.events.isEmpty, "\(receiver.events.map(\.body))")
    }

    @Test func aReloadedShutdownGraceIsTheOneAShutdownWaits() throws {
        // Given a daemon started with a short grace, whose file then raises it
        let (scenario, one) = try Scenario.withSecondary("daemon-grace-reload", named: "one")
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))", daemon: "interval: 1h\nshutdown_grace: 1s\nhooks:\n  sync_token_env: SYNC_TOKEN")
        #expect(try scenario.gitmirror("sync").status == 0)
        let daemon = try scenario.startDaemon(environment: ["SYNC_TOKEN": Self.syncToken])
        // (its first scheduled run, a no-op, is over: the push below is the API's run, not a follow-up queued behind it)
        #expect(eventually(within: 20) { try runs(scenario).contains { $0.trigger == "schedule" && $0.result == .ok } })
        let text = try String(contentsOf: scenario.config, encoding: .utf8).replacingOccurrences(of: "shutdown_grace: 1s", with: "shutdown_grace: 30s")
        try text.write(to: scenario.config, atomically: true, encoding: .utf8)
        #expect(try daemon.post("/reload", headers: ["Authorization": "Bearer \(Self.syncToken)"]).status == 200)

        // When a push is slow (4 s in its hook) and SIGTERM comes
        try one.installHook("pre-receive", "#!/bin/sh\nsleep 4\n")
        let head = try scenario.primary.commit("second")
        #expect(try daemon.post("/hooks/sync/app", headers: ["Authorization": "Bearer \(Self.syncToken)"]).status == 202)
        #expect(eventually(within: 10) { try runs(scenario).first.map { $0.result == .running && $0.trigger == "api" } ?? false })
        daemon.process.signal(SIGTERM)
        #expect(daemon.process.wait() == 0)

        // Then the push was given the reloaded 30 s and finished
        #expect(try one.refs()["refs/heads/main"] == head, "\(daemon.logText)")
        #expect(try runs(scenario).first?.result == .ok, "\(daemon.logText)")
        #expect(daemon.logText.contains("grace=30s"), "\(daemon.logText)")
    }

    @Test func metricsPassPromtoolCheck() throws {
        let (scenario, one) = try Scenario.withSecondary("daemon-metrics", named: "one")
        let closed = try Network.freePort()
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))\n- name: down\n  url: git://127.0.0.1:\(closed)/x.git",
                               daemon: "interval: 1h")
        let daemon = try scenario.startDaemon()
        #expect(eventually(within: 40) { try daemon.get("/metrics").text.contains("gitmirror_sync_runs_total") })

        let metrics = try daemon.get("/metrics").text
        let check = try Shell.run(["promtool", "check", "metrics"], input: metrics, check: false)

        #expect(check.status == 0, "\(check)\n\(metrics)")
        for name in ["gitmirror_build_info", "gitmirror_sync_runs_total", "gitmirror_sync_duration_seconds_bucket",
                     "gitmirror_push_duration_seconds_bucket", "gitmirror_refs_total", "gitmirror_rejections_total",
                     "gitmirror_last_success_timestamp_seconds", "gitmirror_last_attempt_timestamp_seconds",
                     "gitmirror_secondary_behind_seconds", "gitmirror_remote_failing", "gitmirror_cache_packs", "gitmirror_cache_bytes"] {
            #expect(metrics.contains(name), "\(name) missing")
        }
        // The secondary that is down has never been in step: it is failing and behind since the first run
        let lines = metrics.split(separator: "\n")
        func value(_ series: String) -> Double? {
            lines.first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        #expect(value(#"gitmirror_remote_failing{repository="app",remote="down"}"#) == 1)
        #expect(value(#"gitmirror_remote_failing{repository="app",remote="one"}"#) == 0)
        #expect((value(#"gitmirror_secondary_behind_seconds{repository="app",remote="down"}"#) ?? 0) > 0)
        #expect(value(#"gitmirror_secondary_behind_seconds{repository="app",remote="one"}"#) == 0)
        #expect(!metrics.contains("127.0.0.1"), "a URL leaked into a label")
        #expect(try daemon.get("/healthz").status == 200)

        // behind_seconds is computed when scraped: it grows between syncs (the alert rules count on it)
        usleep(1_500_000)
        let later = try daemon.get("/metrics").text.split(separator: "\n")
        let behindLater = later.first { $0.hasPrefix(#"gitmirror_secondary_behind_seconds{repository="app",remote="down"} "#) }
            .flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        #expect(behindLater >= (value(#"gitmirror_secondary_behind_seconds{repository="app",remote="down"}"#) ?? 0) + 1, "\(later)")
        // build_info carries the version alone; the configuration's load time is a gauge
        #expect(metrics.contains(#"gitmirror_build_info{version="0.1.0"} 1"#), "\(metrics)")
        let loaded = try #require(value("gitmirror_config_last_reload_success_timestamp_seconds"))
        #expect(abs(loaded - Date().timeIntervalSince1970) < 120)
        // The one repository ran: that was a full pass, and nothing waits overdue
        #expect((value("gitmirror_last_full_pass_seconds") ?? 0) > 0, "\(metrics)")
        #expect(abs((value("gitmirror_last_full_pass_end_timestamp_seconds") ?? 0) - Date().timeIntervalSince1970) < 120)
        #expect(value("gitmirror_repositories_overdue") == 0, "\(metrics)")
        #expect(eventually(within: 10) { try scenario.store().lastPass()?.source == "daemon" })
        // "ready" is said once the port is bound, with the address
        let log = daemon.logText
        let bound = try #require(log.range(of: "Server started and listening"))
        let ready = try #require(log.range(of: "daemon ready"))
        #expect(bound.lowerBound < ready.lowerBound)
        #expect(log.contains("listening=127.0.0.1:\(daemon.port)"), "\(log)")

        // A second daemon on the same port says which address is taken
        let second = try Gitmirror.run(["daemon", "--listen", "127.0.0.1:\(daemon.port)"], config: scenario.config)
        #expect(second.status == 1, "\(second)")
        #expect(second.stderr.contains("cannot listen on 127.0.0.1:\(daemon.port): the address is already in use"), "\(second)")
    }

    @Test func notifyReceivesExactlyOneEventPerTransition() throws {
        // Given a secondary that is down for several retries, then comes back
        let scenario = try Scenario("daemon-notify")
        try scenario.primary.commit("first")
        let receiver = try NotifyReceiver(sandbox: scenario.sandbox)
        let slack = try NotifyReceiver(sandbox: scenario.sandbox)
        let later = try scenario.sandbox.directory("later")
        let target = try BareRepository.create(at: later.appendingPathComponent("target.git"))
        let port = try Network.freePort()
        // A Slack incoming webhook's URL is itself a secret: it comes from the environment
        try scenario.configure(secondaries: "- name: flaky\n  url: git://127.0.0.1:\(port)/target.git",
                               daemon: "interval: 1h\nretry_base: 1s\nnotify:\n  - url: \(receiver.url)\n    secret_env: NOTIFY_SECRET\n  - url_env: SLACK_WEBHOOK_URL\n    format: slack")
        let daemon = try scenario.startDaemon(environment: ["NOTIFY_SECRET": "canary-notify-secret", "SLACK_WEBHOOK_URL": slack.url])
        #expect(eventually(within: 60, every: 0.2) { try runs(scenario).filter { $0.result == .failed }.count >= 2 }, "\(daemon.logText)")

        _ = try GitDaemon(sandbox: scenario.sandbox, root: later, port: port)
        #expect(eventually(within: 30, every: 0.2) { try target.refs() == scenario.primary.refs() })
        #expect(eventually(within: 10) {
            receiver.events.contains { $0.body["event"] as? String == "recovered" } && slack.events.count >= 2
        })

        // Then: one "failing" event for the whole streak, one "recovered" event, each signed
        let events = receiver.events.filter { $0.body["remote"] as? String == "flaky" }
        #expect(events.map { $0.body["event"] as? String } == ["failing", "recovered"], "\(receiver.events.map(\.body))")
        for event in receiver.events {
            let body = try JSONSerialization.data(withJSONObject: event.body, options: [.sortedKeys])
            #expect(event.signature == Webhooks.sign(Array(body), secret: "canary-notify-secret"))
        }
        // And the Slack target got the same two, as incoming-webhook messages a channel can read
        let messages = slack.events.map(\.body)
        #expect(messages.count == 2, "\(messages)")
        let texts = messages.compactMap { $0["text"] as? String }
        #expect(texts.count == 2 && texts[0].contains("app/flaky is failing (network)") && texts[1].contains("app/flaky recovered"), "\(texts)")
        #expect(messages.allSatisfy { ($0["blocks"] as? [[String: Any]])?.first?["type"] as? String == "section" }, "\(messages)")
        #expect(messages.allSatisfy { $0["event"] == nil }, "a Slack body is not gitmirror's own event object")
    }
}

/// The daemon's lifecycle details: systemd readiness, coalescing, reloads that remove repositories.
@Suite(.onTestThreads) struct DaemonLifecycleTests {
    @Test func systemdHearsReadyReloadingAndStopping() throws {
        // Given a NOTIFY_SOCKET, as systemd sets for Type=notify services
        let (scenario, one) = try Scenario.withSecondary("daemon-sdnotify", named: "one")
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))", daemon: "interval: 1h")
        let socketPath = scenario.sandbox.path("notify.sock").path
        let listener = try DatagramListener(path: socketPath)
        let daemon = try scenario.startDaemon(environment: ["NOTIFY_SOCKET": socketPath])

        #expect(listener.receive(within: 5) == "READY=1")
        daemon.process.signal(SIGHUP)
        #expect(listener.receive(within: 5) == "RELOADING=1")
        #expect(listener.receive(within: 5) == "READY=1")
        daemon.process.signal(SIGTERM)
        #expect(listener.receive(within: 10) == "STOPPING=1")
        #expect(daemon.process.wait() == 0)
    }

    @Test func aFloodOfHooksGivesOneRunningSyncAndOneQueued() throws {
        let scenario = try Scenario("daemon-flood")
        for index in 0..<30 { try scenario.primary.commit("commit \(index)", on: "branch-\(index)") }
        let one = try scenario.secondary("one")
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))",
                               daemon: "interval: 1h\nhooks:\n  sync_token_env: SYNC_TOKEN")
        let daemon = try scenario.startDaemon(environment: ["SYNC_TOKEN": DaemonTests.syncToken])
        #expect(eventually(within: 40) { try one.refs() == scenario.primary.refs() })
        #expect(eventually(within: 10) { try scenario.store().runs(repository: "app").allSatisfy { $0.result != .running } })
        let before = try scenario.store().runs(repository: "app").count
        // (the next sync has something to push, and its push takes 3 s: the flood lands while it runs,
        // however slowly a loaded machine answers twenty requests)
        try scenario.primary.commit("flood")
        try one.installHook("pre-receive", "#!/bin/sh\nsleep 3\n")

        // When twenty hooks arrive at once
        let statuses = concurrently(20) { _ in (try? daemon.post("/hooks/sync/app", headers: ["Authorization": "Bearer \(DaemonTests.syncToken)"]))?.status }
        #expect(statuses.allSatisfy { $0 == 202 }, "\(statuses)")
        // (settled: no run going, and the schedule no longer holds a follow-up queued by a hook)
        #expect(eventually(within: 20) {
            let store = try scenario.store()
            let entry = try store.schedule().first { $0.repository == "app" }
            return try store.runs(repository: "app").allSatisfy { $0.result != .running }
                && entry?.state == "idle" && entry?.note != "queued by a trigger during the last run"
        })

        // Then they became one sync, plus at most one follow-up for the hooks that came during it
        let added = try scenario.store().runs(repository: "app").count - before
        #expect((1...2).contains(added), "\(added) runs")
        #expect(try one.refs() == scenario.primary.refs())
    }

    @Test func reloadThatRemovesARepositoryStopsSchedulingItAndKeepsItsHistory() throws {
        let (scenario, one) = try Scenario.withSecondary("daemon-remove", named: "one")
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))",
                               daemon: "interval: 10s\nhooks:\n  sync_token_env: SYNC_TOKEN")
        let daemon = try scenario.startDaemon(environment: ["SYNC_TOKEN": DaemonTests.syncToken])
        #expect(eventually(within: 30) { try scenario.store().runs(repository: "app").contains { $0.result == .ok } })

        // When mirrors.yaml now lists another repository only, and the daemon reloads
        let other = try scenario.secondary("other-target")
        let text = try String(contentsOf: scenario.config, encoding: .utf8).replacingOccurrences(of: "- name: app", with: "- name: renamed")
            .replacingOccurrences(of: scenario.url(one), with: scenario.url(other))
        try text.write(to: scenario.config, atomically: true, encoding: .utf8)
        let reload = try daemon.post("/reload", headers: ["Authorization": "Bearer \(DaemonTests.syncToken)"])

        // Then the old one is no longer known to the scheduler, the new one syncs, and the history stays
        #expect(reload.status == 200, "\(reload.text)")
        #expect(try daemon.post("/hooks/sync/app", headers: ["Authorization": "Bearer \(DaemonTests.syncToken)"]).status == 404)
        #expect(eventually(within: 30) { try other.refs() == scenario.primary.refs() })
        let history = try StateStore(path: scenario.sandbox.path("state/gitmirror.sqlite").path, readOnly: true).runs(repository: "app")
        #expect(!history.isEmpty)
        #expect(FileManager.default.fileExists(atPath: scenario.sandbox.path("state/cache/app.git").path))
    }
}

/// GitLab's and Gitea's hooks, and JSON logs.
@Suite(.onTestThreads) struct DaemonHookFormatTests {
    @Test func gitlabTokenAndGiteaSignatureTriggerTheMatchingRepository() throws {
        let (scenario, one) = try Scenario.withSecondary("daemon-forges", named: "one")
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))",
                               daemon: "interval: 1h\nhooks:\n  gitlab_token_env: GITLAB_TOKEN\n  gitea_secret_env: GITEA_SECRET")
        let daemon = try DaemonProcess(sandbox: scenario.sandbox, config: scenario.config, environment: [
            "GITLAB_TOKEN": "canary-gitlab-hook-token", "GITEA_SECRET": "canary-gitea-hook-secret"])
        try daemon.waitUntilReady()
        #expect(eventually(within: 40) { try one.refs() == scenario.primary.refs() })

        // GitLab names the project by git_http_url and authenticates with X-Gitlab-Token
        var head = try scenario.primary.commit("for gitlab")
        let gitlab = #"{"object_kind": "push", "project": {"git_http_url": "\#(scenario.url(scenario.primary))"}}"#
        #expect(try daemon.post("/hooks/gitlab", body: gitlab, headers: ["X-Gitlab-Token": "wrong"]).status == 401)
        #expect(try daemon.post("/hooks/gitlab", body: gitlab, headers: ["X-Gitlab-Token": "canary-gitlab-hook-token"]).status == 202)
        #expect(eventually(within: 3) { try one.refs()["refs/heads/main"] == head })

        // Gitea signs the body with HMAC-SHA256 in X-Gitea-Signature (hex, no prefix)
        head = try scenario.primary.commit("for gitea")
        let gitea = #"{"ref": "refs/heads/main", "repository": {"clone_url": "\#(scenario.url(scenario.primary))"}}"#
        let signature = String(Webhooks.sign(Array(gitea.utf8), secret: "canary-gitea-hook-secret").dropFirst("sha256=".count))
        #expect(try daemon.post("/hooks/gitea", body: gitea, headers: ["X-Gitea-Signature": String(repeating: "0", count: 64)]).status == 401)
        #expect(try daemon.post("/hooks/gitea", body: gitea, headers: ["X-Gitea-Signature": signature]).status == 202)
        #expect(eventually(within: 3) { try one.refs()["refs/heads/main"] == head })

        // An event for a repository nobody mirrors is a 404
        let stranger = #"{"project": {"git_http_url": "https://git.example.com/someone/else.git"}}"#
        #expect(try daemon.post("/hooks/gitlab", body: stranger, headers: ["X-Gitlab-Token": "canary-gitlab-hook-token"]).status == 404)
        #expect(!daemon.logText.contains("canary-gitlab-hook-token") && !daemon.logText.contains("canary-gitea-hook-secret"))
    }

    @Test func jsonLogsCarryRepositoryRemoteRunIdAndErrorClass() throws {
        let (scenario, one) = try Scenario.withSecondary("daemon-json-logs", named: "one")
        let closed = try Network.freePort()
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))\n- name: down\n  url: git://127.0.0.1:\(closed)/x.git",
                               daemon: "interval: 1h")
        let port = try Network.freePort()
        let log = scenario.sandbox.path("json.log")
        let process = try Shell.start([Gitmirror.executable.path, "daemon", "--config", scenario.config.path, "--listen", "127.0.0.1:\(port)",
                                       "--log-format", "json"], log: log)
        defer {
            process.signal(SIGKILL)
            process.wait()
        }
        #expect(eventually(within: 40) { (try String(contentsOf: log, encoding: .utf8)).contains("\"error_class\"") })

        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        #expect(objects.count == lines.count, "every line is one JSON object")
        let failure = try #require(objects.first { $0["error_class"] != nil })
        #expect(failure["repository"] == "app" && failure["remote"] == "down" && failure["error_class"] == "network")
        #expect(failure["run_id"] != nil && failure["level"] == "warning")
    }
}

/// max_connections_per_host bounds the daemon's concurrent operations against one server.
@Suite(.onTestThreads) struct DaemonHostLimitTests {
    @Test func oneConnectionPerHostMeansOneConnectionAtATime() throws {
        // Given two repositories whose secondaries hang on the same silent host, and a limit of one connection per host
        let scenario = try Scenario("daemon-host-limit")
        try scenario.primary.commit("first")
        let silent = try SilentServer(sandbox: scenario.sandbox)
        let primaryURL = scenario.url(scenario.primary)
        try scenario.configure(repositories: ["a", "b"].map { path in
            .init(path == "a" ? "first" : "second", primary: primaryURL,
                  secondaries: [#"{name: hang, url: "git://127.0.0.1:\#(silent.port)/\#(path).git", stall_timeout: 5m}"#])
        }, daemon: "interval: 10s\nmax_parallel_repositories: 4\nmax_connections_per_host: 1")
        let config = scenario.config
        let daemon = try scenario.startDaemon()
        let started = Date()

        // When both are due (the first runs start within a second)
        #expect(eventually(within: 20) { try Gitmirror.store(config).runs().filter { $0.result == .running }.count == 2 })
        #expect(eventually(within: 30) { Network.establishedConnections(toPort: silent.port) >= 1 })
        // (and past the 30 s after which the first fetch gives up streaming its pack to the silent host:
        // that connection must be closed before the pooled worker opens the next one)
        var most = 0, mostConnections = 0
        // When more than one is open, who holds them and what the daemon was doing: for the failure's message.
        var seen = ""
        let deadline = max(Date().addingTimeInterval(3), started.addingTimeInterval(36))
        while Date() < deadline {
            most = max(most, ProcessTable.gitmirrorProcesses().filter { $0.parent == daemon.process.pid }.count)
            // Only the daemon's own: another test's gitmirror may be knocking at this port (FreePort reuse).
            let holders = Network.establishedConnectionHolders(toPort: silent.port, heldBy: ProcessTable.tree(of: daemon.process.pid))
            let open = holders.count
            if open > max(mostConnections, 1) {
                // Who held each, as counted (an ss run a moment later has seen them gone), and what the daemon said.
                seen = "\(holders.joined(separator: "\n"))\n\(daemon.logText.suffix(3000))"
            }
            mostConnections = max(mostConnections, open)
            usleep(50_000)
        }

        // Then only one connection to 127.0.0.1 is open at a time: the other repository waits for the slot;
        // and at most two workers run (one for listings, which may be kept for the next, one for the fetch)
        #expect(mostConnections == 1, "\(seen)")
        #expect(most <= 2, "\(most) workers")
    }
}
