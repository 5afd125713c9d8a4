import Foundation
import MirrorCore
import Testing
import TestSupport

/// Debian's gitolite3 as the secondaries' server: what it refuses reaches the user with the class and
/// the words that fit, per remote and per ref.
@Suite(.onTestThreads) struct GitoliteTests {
    /// A scenario whose primary has `main`, and a gitolite server with the standard rules.
    struct Stage {
        let scenario: Scenario
        let gitolite: GitoliteServer

        init(_ name: String) throws {
            scenario = try Scenario(name)
            try scenario.primary.commit("first")
            gitolite = try GitoliteServer(sandbox: scenario.sandbox)
        }

        /// mirrors.yaml with a secondary per (name, gitolite repository, key) and the credential `mirror` (and `stranger`, where one uses it).
        func configure(_ secondaries: [(name: String, repository: String, stranger: Bool)], options: String = "") throws {
            let items = secondaries.map { "- {name: \($0.name), url: \"\(gitolite.url($0.repository))\", credentials: \($0.stranger ? "stranger" : "mirror")\(options)}" }
            let stranger = secondaries.contains { $0.stranger } ? "\n" + gitolite.credential("stranger", key: gitolite.strangerKey) : ""
            try scenario.configure(secondaries: items.joined(separator: "\n"), credentials: gitolite.credential("mirror") + stranger)
        }
    }

    @Test func whatGitoliteDeniesIsNotFoundOrReadOnlyNeverNetwork() throws {
        // Given secondaries that do not exist, that the mirror's user may not touch, that a user
        // without rights pushes to, and that the user may only read
        let stage = try Stage("gitolite-classes")
        try stage.configure([("missing", "nosuch", false), ("forbidden", "adminonly", false), ("stranger", "backup", true),
                             ("readonly", "readonly", false), ("open", "open", false)])

        // When gitmirror syncs
        let output = try stage.scenario.gitmirror("sync")

        // Then the missing and the forbidden are not_found, saying gitolite does not tell them apart;
        // the read-only one is read_only; nothing is called a network failure; the open one is mirrored
        #expect(output.status == 1, "\(output)")
        for name in ["missing", "forbidden", "stranger"] {
            let state = try #require(try stage.scenario.state(name))
            #expect(state.lastErrorClass == .notFound, "\(name): \(state.lastError ?? "")")
            #expect(state.lastError?.contains("does not exist, or the key's user has no rights on it") == true, "\(state.lastError ?? "")")
            #expect(state.lastError?.contains("DENIED by fallthru") == true, "\(state.lastError ?? "")")
        }
        let readOnly = try #require(try stage.scenario.state("readonly"))
        #expect(readOnly.lastErrorClass == .readOnly, "\(readOnly.lastError ?? "")")
        #expect(readOnly.lastError?.contains("W any readonly mirror DENIED") == true, "\(readOnly.lastError ?? "")")
        #expect(!output.stdout.contains("network") && !output.stderr.contains("DNS"), "\(output)")
        #expect(try stage.gitolite.repository("open").refs() == stage.scenario.primary.refs())

        // And status keeps its table a line per remote, cutting long messages, which --json has whole
        let status = try stage.scenario.gitmirror("status")
        let table = status.stdout.components(separatedBy: "\n\n")[0].split(separator: "\n")
        #expect(table.count == 7, "\(status.stdout)")
        let missing = try #require(table.first { $0.contains(" missing ") })
        #expect(missing.hasSuffix("…") && missing.count < 300, "\(missing)")
        let json = try stage.scenario.gitmirror("status", "--json")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        let whole = rows.first { $0["remote"] as? String == "missing" }?["last_error"] as? String
        #expect(whole?.hasSuffix("Check the repository's name and the server's access rules") == true, "\(whole ?? "")")
    }

    @Test func eachRefusedRefCarriesItsOwnRefusalAndNoOneElses() throws {
        // Given three refs that a deny rule refuses and one it allows
        let stage = try Stage("gitolite-per-ref")
        let main = try stage.scenario.primary.refs()["refs/heads/main"]!
        for branch in ["private/a", "private/b", "private/c"] { try stage.scenario.primary.setRef("refs/heads/\(branch)", to: main) }
        try stage.configure([("guarded", "guarded", false)])

        // When gitmirror syncs
        let output = try stage.scenario.gitmirror("sync")

        // Then main is mirrored and each private ref is rejected with gitolite's line about it, and only it
        #expect(output.status == 1, "\(output)")
        #expect(try stage.gitolite.repository("guarded").refs() == ["refs/heads/main": main])
        let history = try stage.scenario.store().refHistory(repository: "app", remote: "guarded")
        for branch in ["private/a", "private/b", "private/c"] {
            let entry = try #require(history.first { $0.ref == "refs/heads/\(branch)" })
            let message = entry.message ?? ""
            #expect(entry.outcome == .rejected, "\(entry)")
            #expect(message.contains("FATAL: W refs/heads/\(branch) guarded mirror DENIED by refs/heads/private/"), "\(message)")
            for other in ["private/a", "private/b", "private/c"] where other != branch {
                #expect(!message.contains("refs/heads/\(other)"), "\(branch) carries \(other)'s refusal: \(message)")
            }
        }
        let state = try #require(try stage.scenario.state("guarded"))
        #expect(state.lastErrorClass == .rejected && state.lastError?.contains("leave it out with refs:") == true, "\(state.lastError ?? "")")
    }

    @Test func aRewindOnAnAppendOnlyBackupIsProtected() throws {
        // Given a backup where the mirror's user may push but not rewind (RW), in step with the primary
        let stage = try Stage("gitolite-rewind")
        try stage.configure([("backup", "backup", false)], options: ", force: true")
        #expect(try stage.scenario.gitmirror("sync").status == 0)

        // When the primary's main is rewritten and gitmirror syncs with force: true
        let rewritten = try stage.scenario.primary.commit("rewritten", on: "rewrite")
        try stage.scenario.primary.setRef("refs/heads/main", to: rewritten)
        try stage.scenario.primary.deleteRef("refs/heads/rewrite")
        let output = try stage.scenario.gitmirror("sync")

        // Then the refusal is protected (rewinds are not allowed there), naming gitolite's rule
        #expect(output.status == 1, "\(output)")
        let state = try #require(try stage.scenario.state("backup"))
        #expect(state.lastErrorClass == .protected, "\(state.lastError ?? "")")
        #expect(state.lastError?.contains("FATAL: + refs/heads/main backup mirror DENIED") == true, "\(state.lastError ?? "")")

        // And syncing again fails the same way without a second backup of the same tip
        #expect(try stage.scenario.gitmirror("sync").status == 1)
        let backups = try stage.scenario.cache.refs().keys.filter { $0.hasPrefix("refs/gitmirror/backup/backup/refs/heads/main@") }
        #expect(backups.count == 1, "\(backups)")
        // and one journal entry for that refusal
        let refusals = try stage.scenario.store().refHistory(repository: "app", remote: "backup", ref: "refs/heads/main").filter { $0.outcome == .rejected }
        #expect(refusals.count == 1, "\(refusals)")
    }

    @Test func anAppendOnlyBackupKeepsARewrittenBranchAndMirrorsTheNewHistoryBesideIt() throws {
        // Given a backup where rewinds are refused (RW), with append_only: true, in step with the primary
        let stage = try Stage("gitolite-append-only")
        try stage.configure([("backup", "backup", false)], options: ", append_only: true")
        #expect(try stage.scenario.gitmirror("sync").status == 0)
        let original = try #require(try stage.scenario.primary.refs()["refs/heads/main"])

        // When the primary's main is rewritten and gitmirror syncs
        let rewritten = try stage.scenario.primary.commit("rewritten", on: "rewrite")
        try stage.scenario.primary.setRef("refs/heads/main", to: rewritten)
        try stage.scenario.primary.deleteRef("refs/heads/rewrite")
        let first = try stage.scenario.gitmirror("sync")

        // Then the secondary keeps its main and holds the new history beside it; the sync is in step
        #expect(first.status == 0, "\(first)")
        var served = try stage.gitolite.repository("backup").refs()
        #expect(served["refs/heads/main"] == original && served["refs/rewritten/heads/main"] == rewritten, "\(served)")
        let state = try #require(try stage.scenario.state("backup"))
        #expect(state.state == .ok && state.lastErrorClass == nil, "\(state)")
        let history = try stage.scenario.store().refHistory(repository: "app", remote: "backup")
        #expect(history.contains { $0.ref == "refs/heads/main" && $0.action == .keep && $0.message?.contains("refs/rewritten/heads/main") == true }, "\(history)")
        #expect(history.contains { $0.ref == "refs/rewritten/heads/main" && $0.action == .beside && $0.outcome == .applied }, "\(history)")

        // When the primary goes on from the rewrite, the ref beside follows it
        let next = try stage.scenario.primary.commit("after the rewrite")
        #expect(try stage.scenario.gitmirror("sync").status == 0)
        served = try stage.gitolite.repository("backup").refs()
        #expect(served["refs/heads/main"] == original && served["refs/rewritten/heads/main"] == next, "\(served)")

        // When it is rewritten once more, that history goes beside too, and nothing is lost
        let again = try stage.scenario.primary.commit("rewritten again", on: "again")
        try stage.scenario.primary.setRef("refs/heads/main", to: again)
        try stage.scenario.primary.deleteRef("refs/heads/again")
        let third = try stage.scenario.gitmirror("sync")
        #expect(third.status == 0, "\(third)")
        served = try stage.gitolite.repository("backup").refs()
        #expect(served["refs/heads/main"] == original && served["refs/rewritten/heads/main"] == next
                && served["refs/rewritten/heads/main-2"] == again, "\(served)")

        // And commits made on the secondary itself are still a divergence, not set aside
        try Shell.run(["git", "--git-dir=\(stage.gitolite.repository("backup").path)", "update-ref", "refs/heads/main",
                       try stage.gitolite.repository("backup").commit("made on the backup", on: "scratch")])
        let diverged = try stage.scenario.gitmirror("sync")
        let divergedState = try stage.scenario.state("backup")
        #expect(diverged.status == 1 && divergedState?.state == .diverged, "\(diverged)")
    }

    @Test func aUIDWithoutAPasswdEntryIsAConfigurationFaultNotTheServers() throws {
        // Given gitmirror running as a uid the system has no passwd entry for (as a container's
        // arbitrary uid), owning its state and key
        let stage = try Stage("gitolite-no-passwd")
        try stage.configure([("backup", "backup", false)])
        let uid = "61234"
        #expect(try Shell.run(["getent", "passwd", uid], check: false).status != 0)
        let state = try stage.scenario.sandbox.directory("state")
        let config = stage.scenario.sandbox.path("mirrors.yaml")
        try Shell.run(["find", stage.scenario.sandbox.root.path, "-type", "d", "-exec", "chmod", "go+rx", "{}", "+"])
        try Shell.run(["chmod", "go+r", config.path, stage.gitolite.ssh.knownHosts.path])
        try Shell.run(["chown", "-R", "\(uid):\(uid)", state.path, stage.gitolite.ssh.userKey.path])
        try Shell.run(["chmod", "600", stage.gitolite.ssh.userKey.path])

        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = "/nonexistent"

        // When doctor checks first, it logs in as the push will (OpenSSH, this uid) and says it cannot
        let doctor = try Shell.run(["setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", Gitmirror.executableForAnyUser.path,
                                    "doctor", "--config", config.path], environment: environment, check: false)
        #expect(doctor.status != 0 && doctor.stdout.contains("app/backup: config:") && doctor.stdout.contains("no passwd entry"), "\(doctor)")

        // When it syncs (the listing goes through libssh2, the push through OpenSSH)
        let output = try Shell.run(["setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", Gitmirror.executableForAnyUser.path, "sync",
                                    "--config", config.path], environment: environment, check: false)

        // Then the failure is config, naming the missing passwd entry and what to do, not the network
        #expect(output.status == 1, "\(output)")
        let row = try #require(try stage.scenario.state("backup"))
        #expect(row.lastErrorClass == .config, "\(row.lastError ?? "") \(output)")
        #expect(row.lastError?.contains("no passwd entry") == true && row.lastError?.contains("User=") == true, "\(row.lastError ?? "")")
    }

    @Test func doctorAsksGitoliteWithoutCreatingAWildRepository() throws {
        // Given a secondary gitolite would create on first access (C on wild/[a-z]+), a read-only one,
        // a missing one and a writable one
        let stage = try Stage("gitolite-doctor")
        try stage.configure([("wild", "wild/newone", false), ("readonly", "readonly", false), ("missing", "nosuch", false), ("open", "open", false)])

        // When doctor checks them
        let doctor = try stage.scenario.gitmirror("doctor", "--json")

        // Then the wild one is reported as to be created by gitolite and was not created, the others
        // are classed as a sync would find them, and nothing was pushed
        #expect(doctor.status == 1, "\(doctor)")
        let findings = try #require(try JSONSerialization.jsonObject(with: Data(doctor.stdout.utf8)) as? [[String: Any]])
        func finding(_ remote: String) -> [String: Any]? { findings.first { $0["remote"] as? String == remote } }
        #expect((finding("wild")?["access"] as? String)?.contains("gitolite creates it at the first sync (C on wild/[a-z]+)") == true, "\(doctor.stdout)")
        #expect(finding("wild")?["failure"] == nil, "\(doctor.stdout)")
        #expect(!stage.gitolite.exists("wild/newone"))
        #expect((finding("readonly")?["failure"] as? [String: Any])?["error_class"] as? String == "read_only", "\(doctor.stdout)")
        #expect((finding("missing")?["failure"] as? [String: Any])?["error_class"] as? String == "not_found", "\(doctor.stdout)")
        #expect(finding("open")?["failure"] == nil && (finding("open")?["access"] as? String)?.contains("push ok") == true, "\(doctor.stdout)")
        #expect(try stage.gitolite.repository("open").refs().isEmpty)

        // And the sync that follows creates and fills the wild repository, as doctor said
        #expect(try stage.scenario.gitmirror("sync").status == 1)
        #expect(try stage.gitolite.repository("wild/newone").refs() == stage.scenario.primary.refs())
    }
}
