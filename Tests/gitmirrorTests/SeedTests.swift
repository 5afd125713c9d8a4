import Foundation
import MirrorCore
import Testing
import TestSupport

/// One pack for many secondaries: on a first seed, the primary's pack streams to every empty
/// secondary gitmirror reaches itself (git://, SSH, HTTPS, a local path) while the cache receives it.
@Suite(.onTestThreads) struct SeedTests {
    static let seeded = "created from the primary's pack as it arrived"

    /// The names of the packs a repository holds (a pack's name is the checksum of its bytes).
    func packs(_ path: String) -> Set<String> {
        let directory = URL(fileURLWithPath: path).appendingPathComponent("objects/pack")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return Set(names.filter { $0.hasSuffix(".pack") })
    }

    /// Keeps what receive-pack gets as a pack (small pushes are otherwise exploded into loose objects).
    func keepPacks(_ repository: BareRepository) throws {
        try Shell.run(["git", "--git-dir=\(repository.path)", "config", "receive.unpackLimit", "1"])
    }

    @Test func firstSeedStreamsThePrimarysPackToEveryEmptySecondaryItReaches() throws {
        // Given a primary with branches and tags, and empty secondaries over git://, SSH, HTTPS (with
        // basic auth) and a local path, and one git:// secondary that is not empty
        let scenario = try Scenario("seed")
        try scenario.primary.commit("first")
        try scenario.primary.commit("second")
        try scenario.primary.commit("feature work", on: "feature")
        try scenario.primary.tag("v1.0", message: "release 1.0")
        try scenario.primary.tag("light")
        let viaGit = try scenario.secondary("via-git")
        let viaSSH = try scenario.secondary("via-ssh")
        let local = try BareRepository.create(at: scenario.sandbox.path("local/copy.git"))
        let viaHTTPS = try scenario.secondary("via-https")
        let busy = try scenario.secondary("busy")
        let busyTip = try busy.commit("already here", on: "elsewhere")
        for repository in [viaGit, viaSSH, local, viaHTTPS] { try keepPacks(repository) }
        let ssh = try SSHServer(sandbox: scenario.sandbox)
        let https = try HTTPSServer(sandbox: scenario.sandbox, root: scenario.served, user: "mirror", password: "canary-seed-password-3318")
        let token = try scenario.sandbox.write("secrets/token", "canary-seed-password-3318\n")
        try scenario.configure(secondaries: """
            - name: git
              url: \(scenario.url(viaGit))
            - name: ssh
              url: \(ssh.url(viaSSH.url))
              credentials: ssh-key
            - name: local
              url: \(local.path)
            - name: https
              url: \(https.url("via-https.git"))
              credentials: web
            - name: busy
              url: \(scenario.url(busy))
            """, credentials: ssh.credential("ssh-key") + "\n" + https.credential("web", passwordFile: token))

        // When gitmirror syncs for the first time
        let output = try scenario.gitmirror("sync")

        // Then every secondary holds the primary's refs (the busy one keeps its own branch too)
        #expect(output.status == 0, "\(output)")
        let expected = try scenario.primary.refs()
        for secondary in [viaGit, viaSSH, local, viaHTTPS] {
            #expect(try secondary.refs() == expected, "\(secondary.path)")
        }
        var busyExpected = expected
        busyExpected["refs/heads/elsewhere"] = busyTip
        #expect(try busy.refs() == busyExpected)

        // And the empty secondaries it reaches itself took the very pack the cache took, byte for byte
        // (a pack is named by its checksum), recorded as such; the others were pushed as usual
        let cachePacks = packs(scenario.cache.path)
        #expect(cachePacks.count == 1, "\(cachePacks)")
        for secondary in [viaGit, viaSSH, local, viaHTTPS] {
            #expect(packs(secondary.path) == cachePacks, "\(secondary.path): \(packs(secondary.path)) vs \(cachePacks)")
        }
        let history = try scenario.store().refHistory(repository: "app")
        for remote in ["git", "ssh", "local", "https"] {
            let rows = history.filter { $0.remote == remote }
            #expect(rows.count == expected.count && rows.allSatisfy { $0.action == .create && $0.outcome == .applied && $0.message == Self.seeded },
                    "\(remote): \(rows)")
        }
        for remote in ["busy"] {
            let rows = history.filter { $0.remote == remote && $0.action == .create }
            #expect(rows.count == expected.count && rows.allSatisfy { $0.outcome == .applied && $0.message == nil }, "\(remote): \(rows)")
        }
        let states = try scenario.store().remoteStates()
        #expect(states.count == 6 && states.allSatisfy { $0.state == .ok }, "\(states)")

        // And the next sync finds every secondary up to date
        let again = try scenario.gitmirror("sync")
        #expect(again.status == 0, "\(again)")
        #expect(try scenario.store().refHistory(repository: "app").count == history.count)
        #expect(!output.combined.contains("canary-seed-password-3318"))
    }

    @Test func seedsTakeTheHostsConnectionsAndThoseLeftOverArePushedAfterwards() throws {
        // Given a primary and three empty git:// secondaries on the same host, which allows two connections
        let scenario = try Scenario("seed-host-limit")
        try scenario.primary.commit("first")
        try scenario.primary.tag("v1")
        let secondaries = try ["one", "two", "three"].map { try scenario.secondary($0) }
        try scenario.configure(secondaries: secondaries.enumerated().map { index, secondary in
            "- name: \(["one", "two", "three"][index])\n  url: \(scenario.url(secondary))"
        }.joined(separator: "\n"), daemon: "max_connections_per_host: 2")

        // When gitmirror syncs for the first time
        let output = try scenario.gitmirror("sync")

        // Then the fetch took one connection and one seed the other: the first secondary got the
        // primary's pack as it arrived, the other two were pushed to afterwards, and all are in step
        #expect(output.status == 0, "\(output)")
        let expected = try scenario.primary.refs()
        for secondary in secondaries { #expect(try secondary.refs() == expected, "\(secondary.path)") }
        let history = try scenario.store().refHistory(repository: "app")
        let seeded = Set(history.filter { $0.message == Self.seeded }.map(\.remote))
        #expect(seeded == ["one"], "\(history)")
        for remote in ["two", "three"] {
            let rows = history.filter { $0.remote == remote }
            #expect(rows.count == expected.count && rows.allSatisfy { $0.outcome == .applied && $0.message == nil }, "\(remote): \(rows)")
        }
    }

    @Test func aSeededSecondaryThatRefusesARefGetsItPushedAsUsualAndTheRefusalReported() throws {
        // Given an empty local secondary whose update hook refuses one branch
        let scenario = try Scenario("seed-refused")
        try scenario.primary.commit("first")
        try scenario.primary.commit("secret work", on: "secret")
        try scenario.primary.tag("v1")
        let guarded = try BareRepository.create(at: scenario.sandbox.path("local/guarded.git"))
        try guarded.refuse("refs/heads/secret", saying: "refs/heads/secret may not be mirrored here")
        try scenario.configure(secondaries: "- name: guarded\n  url: \(guarded.path)")

        // When gitmirror syncs for the first time
        let output = try scenario.gitmirror("sync")

        // Then the other refs arrived with the primary's pack, the refused branch was pushed again the
        // usual way and is reported with the hook's words, and the secondary holds no refused ref
        #expect(output.status == 1, "\(output)")
        let refs = try guarded.refs()
        let primary = try scenario.primary.refs()
        #expect(refs["refs/heads/secret"] == nil)
        #expect(refs["refs/heads/main"] == primary["refs/heads/main"])
        #expect(refs["refs/tags/v1"] == primary["refs/tags/v1"])
        let history = try scenario.store().refHistory(repository: "app", remote: "guarded")
        #expect(history.first { $0.ref == "refs/heads/main" }?.message == Self.seeded, "\(history)")
        let secret = try #require(history.first { $0.ref == "refs/heads/secret" })
        #expect(secret.outcome == .rejected, "\(secret)")
        #expect(secret.message?.contains("may not be mirrored here") == true, "\(secret.message ?? "")")
        let state = try #require(try scenario.state("guarded"))
        #expect(state.state == .failing && state.lastErrorClass == .rejected, "\(state)")
    }

    @Test func aSeedOfManyRefsIsOneTransactionAndOneRefusalSendsThemAllTheUsualWay() throws {
        // Given a primary with 1,000 branches besides main, and an empty local secondary whose update
        // hook refuses one of them
        let scenario = try Scenario("seed-atomic")
        let main = try scenario.primary.commit("first")
        let names = (0..<1000).map { String(format: "refs/heads/release/%04d", $0) }
        try Shell.run(["git", "--git-dir=\(scenario.primary.path)", "update-ref", "--stdin"],
                      input: names.map { "create \($0) \(main)\n" }.joined())
        let guarded = try BareRepository.create(at: scenario.sandbox.path("local/guarded.git"))
        try guarded.refuse("refs/heads/release/0000", saying: "release/0000 may not be mirrored here")
        try scenario.configure(secondaries: "- name: guarded\n  url: \(guarded.path)")

        // When gitmirror syncs for the first time
        let output = try scenario.gitmirror("sync")

        // Then the seed asked for all or none and got none (so no ref says it came with the pack), every
        // ref but the refused one was pushed the usual way, and the refusal is reported with the hook's words
        #expect(output.status == 1, "\(output)")
        var expected = try scenario.primary.refs()
        expected["refs/heads/release/0000"] = nil
        #expect(try guarded.refs() == expected)
        let history = try scenario.store().refHistory(repository: "app", remote: "guarded", limit: 5000)
        #expect(!history.contains { $0.message == Self.seeded }, "\(history.prefix(3))")
        #expect(history.filter { $0.outcome == .applied }.count == expected.count)
        let refused = try #require(history.first { $0.ref == "refs/heads/release/0000" })
        #expect(refused.outcome == .rejected && refused.message?.contains("may not be mirrored here") == true, "\(refused)")
    }

    @Test func aFetchThatFailsLeavesTheSeededSecondariesWithoutAnyRef() throws {
        // Given a primary whose server sends half its pack and hangs up (its pack-objects is replaced,
        // through git's protected uploadpack.packObjectsHook, by one that does so), and empty secondaries
        // on a local path and over HTTPS
        let sandbox = try Sandbox("seed-broken")
        let served = try sandbox.directory("served")
        let primary = try BareRepository.create(at: served.appendingPathComponent("primary.git"))
        for index in 0..<30 {
            try primary.commit("commit \(index)", file: "file-\(index).txt", content: (0..<400).map { "line \($0) of \(index)" }.joined(separator: "\n"))
        }
        let half = try sandbox.write("bin/half-pack", """
            #!/bin/sh
            "$@" > "$0.pack" || exit 1
            head -c 4000 "$0.pack"
            exit 1
            """, mode: 0o755)
        let global = try sandbox.write("gitconfig", "[uploadpack]\n\tpackObjectsHook = \(half.path)\n")
        let daemon = try GitDaemon(sandbox: sandbox, root: served, environment: ["GIT_CONFIG_GLOBAL": global.path])
        let empty = try BareRepository.create(at: sandbox.path("local/empty.git"))
        let web = try sandbox.directory("web")
        let overHTTPS = try BareRepository.create(at: web.appendingPathComponent("copy.git"))
        let https = try HTTPSServer(sandbox: sandbox, root: web, user: "mirror", password: "canary-broken-seed-5521")
        let token = try sandbox.write("secrets/token", "canary-broken-seed-5521\n")
        let config = try sandbox.write("mirrors.yaml", """
            state_dir: state
            credentials:
              \(https.credential("web", passwordFile: token))
            repositories:
              - name: app
                primary: \(daemon.url("primary.git"))
                secondaries:
                  - name: copy
                    url: \(empty.path)
                  - name: web
                    url: \(https.url("copy.git"))
                    credentials: web
            """)

        // When gitmirror syncs
        let output = try Gitmirror.run(["sync"], config: config)

        // Then the primary fails, and neither secondary received a ref (their pack was never complete:
        // the HTTPS one's POST was cut off before its last chunk)
        #expect(output.status == 1, "\(output)")
        #expect(try empty.refs().isEmpty)
        #expect(try overHTTPS.refs().isEmpty)
        let posts = try String(contentsOf: https.accessLog, encoding: .utf8).split(separator: "\n").filter { $0.contains("POST /copy.git/git-receive-pack") }
        #expect(posts.count == 1, "\(posts)")
        #expect(!output.combined.contains("canary-broken-seed-5521"))
        let state = try #require(try Gitmirror.store(config).remoteStates().first { $0.remote == "primary" })
        #expect(state.state == .failing, "\(state)")
    }
}
