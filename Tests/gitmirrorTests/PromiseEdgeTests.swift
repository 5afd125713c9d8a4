import Foundation
import MirrorCore
import Testing
import TestSupport

/// The README's promises at their edges: redirects, renames into folders, stale locks, damaged
/// caches, local secondaries with hooks, and local faults classed by what failed.
@Suite(.onTestThreads) struct PromiseEdgeTests {
    /// A secondary `target` served plainly by `elsewhere` on `host`, and a `front` that redirects every request
    /// there; both ask for `password` as user `mirror`.
    func redirecting(_ name: String, password: String, to host: String) throws
        -> (scenario: Scenario, target: BareRepository, elsewhere: HTTPSServer, front: HTTPSServer) {
        let (scenario, target) = try Scenario.withSecondary(name, named: "target")
        let elsewhere = try HTTPSServer(sandbox: scenario.sandbox, root: scenario.served, user: "mirror", password: password, tls: false)
        let front = try HTTPSServer(sandbox: scenario.sandbox, root: scenario.served, user: "mirror", password: password, tls: false,
                                    redirect: "http://\(host):\(elsewhere.port)")
        return (scenario, target, elsewhere, front)
    }

    @Test func redirectToAnotherHostGetsNoCredentialAndNoPush() throws {
        // Given a secondary whose server redirects to another host, which would accept the push
        let canary = "canary-redirect-password-4471"
        let (scenario, target, elsewhere, front) = try redirecting("redirect", password: canary, to: "localhost")
        try scenario.configureWeb(front.url("target.git"), password: canary)

        // When gitmirror syncs
        let output = try scenario.gitmirror("sync")

        // Then the redirect fails as config, the other host saw no request, and nothing was pushed
        #expect(output.status == 1, "\(output)")
        let state = try #require(try scenario.state("web"))
        #expect(state.lastErrorClass == .config, "\(state)")
        #expect(state.lastError?.contains("redirect") == true, "\(state.lastError ?? "")")
        #expect(elsewhere.accessLogText.isEmpty, "\(elsewhere.accessLogText)")
        #expect(try target.refs().isEmpty)
        #expect(!output.combined.contains(canary))
    }

    @Test func redirectToAnotherPortOfTheSameHostGetsNoCredential() throws {
        // Given a front on 127.0.0.1 that redirects every request to another port of 127.0.0.1, whose
        // server asks for the password: libgit2 follows such a redirect by itself; a secondary and a
        // primary are both behind the front
        let canary = "canary-redirect-port-password-5520"
        let (scenario, target, elsewhere, front) = try redirecting("redirect-port", password: canary, to: "127.0.0.1")
        let secret = try scenario.sandbox.write("secrets/password", canary)
        _ = try scenario.sandbox.write("mirrors.yaml", """
            state_dir: state
            credentials:
              web:
                username: mirror
                password_file: \(secret.path)
            repositories:
              - name: app
                primary: \(scenario.url(scenario.primary))
                secondaries:
                  - name: web
                    url: \(front.url("target.git"))
                    credentials: web
              - name: behind
                primary:
                  url: \(front.url("primary.git"))
                  credentials: web
                secondaries:
                  - name: copy
                    url: \(scenario.url(try scenario.secondary("copy")))
            """)

        // When gitmirror syncs
        let output = try scenario.gitmirror("sync")

        // Then both fail as config naming the redirect, no request to the other port carried the
        // credential, and nothing was pushed
        #expect(output.status == 1, "\(output)")
        let states = try scenario.store().remoteStates()
        let web = try #require(states.first { $0.repository == "app" && $0.remote == "web" })
        #expect(web.lastErrorClass == .config, "\(web)")
        #expect(web.lastError?.contains("redirected to http://127.0.0.1:\(elsewhere.port)") == true, "\(web.lastError ?? "")")
        let behind = try #require(states.first { $0.repository == "behind" && $0.remote == "primary" })
        #expect(behind.lastErrorClass == .config, "\(behind)")
        #expect(behind.lastError?.contains("redirected") == true, "\(behind.lastError ?? "")")
        #expect(!elsewhere.accessLogText.contains(" - mirror ["), "\(elsewhere.accessLogText)")
        #expect(try target.refs().isEmpty)
        #expect(!output.combined.contains(canary))
    }

    /// `feature` mirrored once to `backup` (with `secondaryOptions`), then renamed `feature/login` on
    /// the primary; returns the scenario, the secondary and the branch's tip.
    func renamedIntoAFolder(_ name: String, secondaryOptions: String) throws -> (Scenario, BareRepository, String) {
        let (scenario, backup, tip) = try Scenario.withMirroredBranch(name, "feature", options: secondaryOptions)
        try scenario.primary.deleteRef("refs/heads/feature")
        try scenario.primary.setRef("refs/heads/feature/login", to: tip)
        return (scenario, backup, tip)
    }

    @Test func branchRenamedIntoAFolderReachesTheSecondaryWithPrune() throws {
        // Given `feature` renamed `feature/login` on the primary, and a secondary that prunes
        let (scenario, backup, tip) = try renamedIntoAFolder("rename-folder", secondaryOptions: "\n  prune: true")

        // When gitmirror syncs
        let output = try scenario.gitmirror("sync")

        // Then the cache and the secondary follow, and so does the way back (`feature/login` → `feature`)
        #expect(output.status == 0, "\(output)")
        #expect(try backup.refs() == scenario.primary.refs())
        #expect(try scenario.cache.refs()["refs/heads/feature"] == nil)
        try scenario.primary.deleteRef("refs/heads/feature/login")
        try scenario.primary.setRef("refs/heads/feature", to: tip)
        let back = try scenario.gitmirror("sync")
        #expect(back.status == 0, "\(back)")
        #expect(try backup.refs() == scenario.primary.refs())
    }

    @Test func branchRenamedIntoAFolderFailsThatRefAloneWithoutPrune() throws {
        // Given `feature` renamed `feature/login` on the primary, a secondary that keeps deleted branches, and main moved on
        let (scenario, backup, tip) = try renamedIntoAFolder("rename-keep", secondaryOptions: "")
        let main = try scenario.primary.commit("second")

        // When gitmirror syncs
        let output = try scenario.gitmirror("sync")

        // Then main still arrives, `feature` is kept, and only `feature/login` fails, named with the reason
        #expect(output.status == 1, "\(output)")
        #expect(try backup.refs()["refs/heads/main"] == main)
        #expect(try backup.refs()["refs/heads/feature"] == tip)
        let row = try #require(try scenario.store().refHistory(repository: "app", ref: "refs/heads/feature/login").first)
        #expect(row.outcome == .rejected && row.message?.contains("refs/heads/feature") == true, "\(row)")
    }

    @Test func staleLockFilesInTheCacheAreRemovedAndSaidSo() throws {
        let (scenario, backup) = try Scenario.withBackup("stale-lock", synced: true)

        // Given lock files a killed process left in the cache
        let old = Date().addingTimeInterval(-3600)
        for name in ["refs/heads/main.lock", "packed-refs.lock", "objects/pack/tmp_pack_Xy12ab", "objects/ab/tmp_object_git2_Qz90"] {
            let lock = try scenario.sandbox.write("state/cache/app.git/\(name)", "")
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: lock.path)
        }
        try scenario.primary.commit("second")

        // When gitmirror syncs
        let output = try scenario.gitmirror("sync")

        // Then the sync goes through, the locks are gone, and the run says so
        #expect(output.status == 0, "\(output)")
        #expect(try backup.refs() == scenario.primary.refs())
        for name in ["refs/heads/main.lock", "packed-refs.lock", "objects/pack/tmp_pack_Xy12ab", "objects/ab/tmp_object_git2_Qz90"] {
            #expect(!FileManager.default.fileExists(atPath: scenario.sandbox.path("state/cache/app.git/\(name)").path), "\(name)")
        }
        let run = try #require(try scenario.store().runs(repository: "app").first)
        #expect(run.summary?.contains("refs/heads/main.lock") == true, "\(String(describing: run.summary))")
    }

    /// Every object of the cache as a loose file (libgit2 fetches into packs).
    func explodeCache(_ scenario: Scenario) throws {
        let pack = scenario.sandbox.path("state/cache/app.git/objects/pack")
        for file in try FileManager.default.contentsOfDirectory(atPath: pack.path) where file.hasSuffix(".pack") {
            let moved = scenario.sandbox.path(file)
            try FileManager.default.moveItem(at: pack.appendingPathComponent(file), to: moved)
            try FileManager.default.removeItem(at: pack.appendingPathComponent(file.replacingOccurrences(of: ".pack", with: ".idx")))
            try Shell.run(["sh", "-c", "git --git-dir='\(scenario.cache.path)' unpack-objects -q < '\(moved.path)'"])
        }
    }

    func truncate(_ scenario: Scenario, object id: String) throws {
        let file = scenario.sandbox.path("state/cache/app.git/objects/\(id.prefix(2))/\(id.dropFirst(2))")
        let data = try Data(contentsOf: file)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        try data.prefix(data.count / 2).write(to: file)
    }

    @Test func truncatedObjectReadWhilePlanningNeverHangsAndTheCacheIsRebuilt() throws {
        // Given a secondary one commit behind, and that commit truncated in the cache
        let scenario = try Scenario("truncated")
        let first = try scenario.primary.commit("first")
        let second = try scenario.primary.commit("second")
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))", defaults: "stall_timeout: 3s")
        #expect(try scenario.gitmirror("sync").status == 0)
        try backup.setRef("refs/heads/main", to: first)
        try explodeCache(scenario)
        try truncate(scenario, object: first)

        // When gitmirror syncs (the plan asks whether `second` contains `first`)
        let started = Date()
        let output = try scenario.gitmirror("sync")

        // Then it finishes in step within the limits, the damaged cache is quarantined and rebuilt
        #expect(output.status == 0, "\(output)")
        #expect(Date().timeIntervalSince(started) < 60)
        #expect(try backup.refs()["refs/heads/main"] == second)
        let quarantine = try FileManager.default.contentsOfDirectory(atPath: scenario.sandbox.path("state/quarantine").path)
        #expect(quarantine.count == 1 && quarantine[0].hasPrefix("app-"), "\(quarantine)")
        let run = try #require(try scenario.store().runs(repository: "app").first)
        #expect(run.summary?.contains("internal") == true && run.summary?.contains(first) == true, "\(String(describing: run.summary))")
        let journal = try scenario.store().refHistory(repository: "app", remote: "cache")
        #expect(journal.contains { $0.action == .quarantine && $0.message?.contains(first) == true }, "\(journal)")
    }

    @Test func flippedByteInThePackIsRepairedAndBackupsCarriedOver() throws {
        // Given a cache with a backup ref, whose pack then has a byte flipped
        let scenario = try Scenario("flipped")
        try scenario.primary.commit("first", content: String(repeating: "mirror data line\n", count: 2000))
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))\n  prune: true", defaults: "stall_timeout: 3s")
        let old = try scenario.primary.commit("old", on: "old")
        #expect(try scenario.gitmirror("sync").status == 0)
        try scenario.primary.deleteRef("refs/heads/old")
        #expect(try scenario.gitmirror("sync").status == 0)
        let backupRef = try #require(try scenario.cache.refs().keys.first { $0.hasPrefix("refs/gitmirror/backup/") })
        let pack = try #require(try FileManager.default.contentsOfDirectory(atPath: scenario.sandbox.path("state/cache/app.git/objects/pack").path)
            .filter { $0.hasSuffix(".pack") }.sorted().first)
        let packFile = scenario.sandbox.path("state/cache/app.git/objects/pack/\(pack)")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: packFile.path)
        var bytes = try Data(contentsOf: packFile)
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: packFile)

        // When the primary moves on and gitmirror syncs
        try scenario.primary.commit("second")
        let output = try scenario.gitmirror("sync")

        // Then the secondary is in step, and the backup ref survived if its objects could be read, or history says it was lost
        #expect(output.status == 0, "\(output)")
        #expect(try backup.refs() == scenario.primary.refs())
        let carried = try scenario.cache.refs()[backupRef] == old
        let lost = try scenario.store().refHistory(repository: "app", remote: "cache").contains { $0.ref == backupRef && $0.outcome == .lost }
        #expect(carried != lost, "carried \(carried), lost \(lost)")
    }

    @Test func localSecondaryRunsItsHooksAndRefusalsFailPerRef() throws {
        // Given a local-path secondary whose pre-receive refuses everything, and one that denies deletes
        let scenario = try Scenario("local-hooks")
        try scenario.primary.commit("first")
        try scenario.primary.commit("gone", on: "gone")
        let guarded = try BareRepository.create(at: scenario.sandbox.path("local/guarded.git"))
        try guarded.installHook("pre-receive", "#!/bin/sh\necho 'refusing all pushes' >&2\nexit 1\n")
        let keeper = try BareRepository.create(at: scenario.sandbox.path("local/keeper.git"))
        try Shell.run(["git", "--git-dir=\(keeper.path)", "config", "receive.denyDeletes", "true"])
        try scenario.configure(secondaries: """
            - name: guarded
              url: \(guarded.path)
            - name: keeper
              url: file://\(keeper.path)
              prune: true
            """)

        // When gitmirror syncs, then the branch is deleted on the primary and it syncs again
        let first = try scenario.gitmirror("sync")
        try scenario.primary.deleteRef("refs/heads/gone")
        let second = try scenario.gitmirror("sync")

        // Then the hook refused every ref, and the deletion was refused, each reported per ref
        #expect(first.status == 1, "\(first)")
        #expect(try guarded.refs().isEmpty)
        #expect(try scenario.state("guarded")?.lastErrorClass == .rejected)
        #expect(second.status == 1, "\(second)")
        #expect(try keeper.refs()["refs/heads/gone"] != nil)
        let row = try #require(try scenario.store().refHistory(repository: "app", remote: "keeper", ref: "refs/heads/gone").first)
        #expect(row.action == .delete && row.outcome == .rejected, "\(row)")
    }

    @Test func missingLocalPathIsNotFoundNamingThePath() throws {
        let scenario = try Scenario("missing-local")
        try scenario.primary.commit("first")
        let missing = scenario.sandbox.path("nowhere/backup.git").path
        try scenario.configure(secondaries: "- name: local\n  url: \(missing)")

        let output = try scenario.gitmirror("sync")

        #expect(output.status == 1, "\(output)")
        let state = try #require(try scenario.state("local"))
        #expect(state.lastErrorClass == .notFound && state.lastError?.contains(missing) == true, "\(state)")
    }

    @Test func pushOverTheServersSizeLimitIsTooLarge() throws {
        // Given a server that refuses the push with GitHub's and git's wording for a size limit
        // (git's own receive.maxInputSize cannot serve here: receive-pack may exit before it relays
        // index-pack's reason, and the client then sees only the hang-up)
        let scenario = try Scenario("too-large")
        try scenario.primary.commit("big")
        let target = try scenario.secondary("target")
        try target.installHook("pre-receive", "#!/bin/sh\necho 'error: pack exceeds maximum allowed size (2.00 GiB)' >&2\nexit 1\n")
        try scenario.configure(secondaries: "- name: target\n  url: \(scenario.url(target))")

        let output = try scenario.gitmirror("sync")

        // Then the class says too large, with advice, and no progress text in the message
        #expect(output.status == 1, "\(output)")
        let state = try #require(try scenario.state("target"))
        #expect(state.lastErrorClass == .tooLarge, "\(state)")
        #expect(state.lastError?.contains("Counting objects") == false && state.lastError?.contains("Writing objects") == false, "\(state)")
    }

    @Test func aPushOverHTTPSBeyondReceiveMaxInputSizeIsTooLarge() throws {
        // Given a secondary behind git http-backend whose receive.maxInputSize (git's own limit) is
        // 8 KiB, and a primary with about 40 KiB that compresses poorly (a fixed pseudo-random sequence)
        let scenario = try Scenario("too-large-https")
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        let noise = (0..<(40 * 1024 / 8)).map { _ -> String in
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return String(seed >> 1, radix: 36)
        }.joined(separator: "\n")
        try scenario.primary.commit("big", content: noise)
        let target = try scenario.secondary("target")
        try Shell.run(["git", "--git-dir=\(target.path)", "config", "receive.maxInputSize", "8192"])
        let https = try HTTPSServer(sandbox: scenario.sandbox, root: scenario.served, user: "mirror", password: "pw-size-limit")
        try scenario.configureWeb(https.url("target.git"), password: "pw-size-limit", trusting: https.authority.certificate)

        // When gitmirror syncs
        let output = try scenario.gitmirror("sync")

        // Then the failure is too_large, with the advice for a size limit; the target holds nothing
        #expect(output.status == 1, "\(output)")
        let state = try #require(try scenario.state("web"))
        #expect(state.lastErrorClass == .tooLarge, "\(state.lastError ?? "")")
        #expect(try target.refs().isEmpty)
    }

    @Test func wrongSSHKeyPassphraseIsAuth() throws {
        let (scenario, target) = try Scenario.withSecondary("passphrase", named: "target")
        let ssh = try SSHServer(sandbox: scenario.sandbox)
        try Shell.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", "the-right-phrase", "-f", ssh.userKey.path])
        try scenario.configure(secondaries: """
            - name: ssh
              url: \(ssh.url(target.url))
              credentials: key
            """, credentials: "key:\n  ssh_key: \(ssh.userKey.path)\n  ssh_key_passphrase_env: KEY_PHRASE\n  known_hosts: \(ssh.knownHosts.path)")

        let output = try scenario.gitmirror("sync", environment: ["KEY_PHRASE": "canary-wrong-phrase-2290"])

        #expect(output.status == 1, "\(output)")
        let state = try #require(try scenario.state("ssh"))
        #expect(state.lastErrorClass == .auth, "\(state)")
        #expect(!output.combined.contains("canary-wrong-phrase-2290"))
    }

    @Test func cacheOwnedByAnotherUserIsConfigNamingTheOwner() throws {
        // Given a state folder the unprivileged user owns, but a cache that root owns
        let (scenario, _) = try Scenario.withBackup("other-uid", synced: true)
        try scenario.primary.commit("second")
        let state = scenario.sandbox.path("state").path
        try Shell.run(["chown", "-R", "nobody", state])
        try Shell.run(["chown", "-R", "root", scenario.cache.path])
        try Shell.run(["chmod", "-R", "go+rX,go-w", scenario.sandbox.root.path])
        try Shell.run(["chmod", "0644", scenario.config.path])

        // When nobody syncs
        let output = try Shell.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", Gitmirror.executableForAnyUser.path,
                                    "sync", "--config", scenario.config.path], check: false)

        // Then the primary's fetch fails as config, saying who owns the cache
        #expect(output.status == 1, "\(output)")
        let primary = try #require(try scenario.state("primary"))
        #expect(primary.lastErrorClass == .config, "\(primary)")
        #expect(primary.lastError?.contains("root") == true && primary.lastError?.contains("nobody") == true, "\(primary)")
    }

    @Test func fullDiskIsInternalNamingStateDir() throws {
        // Given a cache on a nearly full file system
        let scenario = try Scenario("disk-full")
        try scenario.primary.commit("big", content: (0..<30000).map { "line \($0) \(UUID().uuidString)" }.joined(separator: "\n"))
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))")
        // (mounted where the cache goes: a link there would be refused, as one another user planted)
        let small = scenario.cache.url
        try FileManager.default.createDirectory(at: small, withIntermediateDirectories: true)
        try Shell.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", small.path])
        defer { _ = try? Shell.run(["umount", "-l", small.path]) }
        try Shell.run(["git", "init", "-q", "--bare", small.path])

        // When gitmirror syncs
        let output = try scenario.gitmirror("sync")

        // Then it fails as internal, saying there is no space, not blaming the network
        #expect(output.status == 1, "\(output)")
        let primary = try #require(try scenario.state("primary"))
        #expect(primary.lastErrorClass == .internal && primary.lastError?.contains("no space left") == true, "\(primary)")
    }

    @Test func databaseOfANewerGitmirrorIsOnlyRead() throws {
        let (scenario, backup) = try Scenario.withBackup("newer-schema", synced: true)
        let database = scenario.sandbox.path("state/gitmirror.sqlite").path
        try Shell.run(["sqlite3", database, "INSERT INTO grdb_migrations (identifier) VALUES ('v99')"])
        let runs = try scenario.store().runs(repository: "app").count
        try scenario.primary.commit("second")

        // When an older gitmirror syncs, and asks for the status
        let sync = try scenario.gitmirror("sync")
        let status = try scenario.gitmirror("status")

        // Then the sync refuses with a clear error and writes nothing; status still reads
        #expect(sync.status == 1, "\(sync)")
        #expect(sync.stderr.contains("newer gitmirror"), "\(sync)")
        #expect(try scenario.store().runs(repository: "app").count == runs)
        #expect(try backup.refs()["refs/heads/main"] != scenario.primary.refs()["refs/heads/main"])
        #expect(status.status == 0, "\(status)")
    }

    @Test func emptyDatabaseFileIsRefused() throws {
        let (scenario, backup) = try Scenario.withBackup("empty-db")
        _ = try scenario.sandbox.write("state/gitmirror.sqlite", "")

        let output = try scenario.gitmirror("sync")

        #expect(output.status == 1, "\(output)")
        #expect(output.stderr.contains("empty file"), "\(output)")
        let size = try FileManager.default.attributesOfItem(atPath: scenario.sandbox.path("state/gitmirror.sqlite").path)[.size] as? Int
        #expect(size == 0)
        #expect(try backup.refs().isEmpty)
    }
}
