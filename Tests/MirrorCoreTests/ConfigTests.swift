import Foundation
import Testing
import TestSupport
@testable import MirrorCore

/// Every configuration mistake is reported with its line and column, all at once.
@Suite(.onTestThreads) struct ConfigTests {
    /// The one repository most of these documents end with.
    static let app = "repositories:\n  - name: app\n    primary: /srv/app.git\n    secondaries: [{name: backup, url: /srv/backup.git}]"

    let documents: ConfigDocuments
    var sandbox: Sandbox { documents.sandbox }
    var file: URL { documents.file }

    init() throws {
        documents = try ConfigDocuments("config")
        _ = try sandbox.write("secrets/token", "not-a-real-token")
    }

    func problems(_ yaml: String, environment: [String: String] = [:]) throws -> [ConfigProblem] {
        documents.problems(yaml, environment: environment)
    }

    func only(_ yaml: String) throws -> ConfigProblem {
        let found = try problems(yaml)
        #expect(found.count == 1, "\(found)")
        return try #require(found.first)
    }

    @Test func validConfigurationLoadsWithInheritedDefaults() throws {
        let config = try ConfigLoader().parse("""
            state_dir: state
            defaults:
              prune: true
              timeout: 10m
            credentials:
              web:
                token_file: secrets/token
            repositories:
              - name: app
                primary: https://git.example.com/acme/app.git
                secondaries:
                  - name: backup
                    url: git@backup.example.com:srv/app.git
                  - name: public
                    url: https://forge.example.org/acme/app.git
                    credentials: web
                    force: true
                    refs: ["refs/heads/main"]
            """, file: file)
        let app = try #require(config.mirror(named: "app"))
        #expect(config.stateDirectory.path == sandbox.path("state").path)
        #expect(app.secondaries[0].policy.prune && !app.secondaries[0].policy.force && app.secondaries[0].policy.timeout == 600)
        #expect(app.secondaries[0].url.scheme == .ssh && app.secondaries[0].url.host == "backup.example.com")
        #expect(app.secondaries[1].policy.force && app.secondaries[1].policy.refs == ["refs/heads/main"])
        #expect(config.credentials["web"]?.secret == .file(sandbox.path("secrets/token").standardizedFileURL))
    }

    @Test func twoRepositoriesCannotShareASecondary() throws {
        let problem = try only("""
            repositories:
              - name: app
                primary: https://git.example.com/acme/app.git
                secondaries:
                  - name: backup
                    url: https://Backup.example.com:443/mirror/shared.git/
              - name: lib
                primary: https://git.example.com/acme/lib.git
                secondaries:
                  - name: backup
                    url: ssh://git@backup.example.com/mirror/shared
            """)
        #expect(problem.location.line == 10, "\(problem)")
        #expect(problem.message.contains("'app'") && problem.message.contains(":5:"), "\(problem)")
    }

    @Test func aLocalSecondaryReachedThroughASymlinkIsTheSameRepository() throws {
        let real = try sandbox.directory("repos/shared.git")
        try FileManager.default.createSymbolicLink(atPath: sandbox.path("link.git").path, withDestinationPath: real.path)
        let problem = try only("""
            repositories:
              - name: app
                primary: https://git.example.com/acme/app.git
                secondaries:
                  - name: local
                    url: repos/shared.git
              - name: lib
                primary: https://git.example.com/acme/lib.git
                secondaries:
                  - name: local
                    url: link.git
            """)
        #expect(problem.message.contains("same repository"), "\(problem)")
    }

    @Test func repositoriesThatMirrorInACycleAreRefused() throws {
        let problem = try only("""
            repositories:
              - name: a
                primary: https://one.example.com/x.git
                secondaries:
                  - name: two
                    url: https://two.example.com/x.git
              - name: b
                primary: https://two.example.com/x.git
                secondaries:
                  - name: one
                    url: https://one.example.com/x.git
            """)
        #expect(problem.message.contains("cycle"), "\(problem)")
    }

    @Test func repositoryNamesThatDifferOnlyInCaseAreRefused() throws {
        let problem = try only("""
            repositories:
              - name: App
                primary: https://git.example.com/acme/app.git
                secondaries:
                  - name: backup
                    url: /srv/a.git
              - name: app
                primary: https://git.example.com/acme/app2.git
                secondaries:
                  - name: backup
                    url: /srv/b.git
            """)
        #expect(problem.location.line == 7 && problem.message.contains("only in case"), "\(problem)")
    }

    @Test func rsaSSHKeyIsRefusedWithTheFix() throws {
        let key = sandbox.path("keys/id_rsa")
        try FileManager.default.createDirectory(at: key.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Shell.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", key.path])
        let problem = try only("""
            credentials:
              backup:
                ssh_key: keys/id_rsa
            repositories:
              - name: app
                primary: https://git.example.com/acme/app.git
                secondaries:
                  - name: backup
                    url: ssh://git@backup.example.com/srv/app.git
                    credentials: backup
            """)
        #expect(problem.location.line == 3 && problem.message.contains("RSA") && problem.message.contains("ed25519"), "\(problem)")
    }

    @Test func tokenAsTheURLUserIsRejectedWithWhereToPutIt() throws {
        let problem = try only("""
            repositories:
              - name: app
                primary: https://ghp_Example0123456789abcdefABCDEF0123@github.com/acme/app.git
                secondaries:
                  - name: backup
                    url: /srv/backup.git
            """)
        #expect(problem.message.contains("credentials:") && !problem.message.contains("ghp_Example"), "\(problem)")
    }

    @Test func passwordInURLIsRejectedAtItsLineAndColumn() throws {
        let problem = try only("""
            repositories:
              - name: app
                primary: https://user:hunter2@git.example.com/app.git
                secondaries:
                  - name: backup
                    url: /srv/backup.git
            """)
        #expect(problem.location.line == 3 && problem.location.column == 14)
        #expect(problem.message.contains("password"))
        #expect(!problem.message.contains("hunter2"))
    }

    @Test func aURLUserThatIsNotTheCredentialsUsernameIsRefusedAtTheURL() throws {
        _ = try sandbox.write("keys/id_ed25519", "not a key", mode: 0o600)
        let problem = try only("""
            credentials:
              gitolite: {ssh_key: keys/id_ed25519, username: gitolite}
            repositories:
              - name: app
                primary: /srv/app.git
                secondaries: [{name: backup, url: "ssh://git@git.example.com/backup", credentials: gitolite}]
            """)
        #expect(problem.location.line == 6, "\(problem)")
        #expect(problem.message.contains("logs in as 'git'") && problem.message.contains("username: gitolite"), "\(problem)")
    }

    @Test func appendOnlyAndForceAreRefusedTogether() throws {
        let problem = try only("""
            repositories:
              - name: app
                primary: /srv/app.git
                secondaries: [{name: backup, url: /srv/backup.git, force: true, append_only: true}]
            """)
        #expect(problem.location.line == 4 && problem.message.contains("choose one for 'backup'"), "\(problem)")
        let config = try documents.load("defaults: {append_only: true}\n" + Self.app)
        #expect(config.repositories.first?.secondaries.first?.policy.appendOnly == true)
    }

    @Test func codeCommitOverSSHIsRefusedWithTheHTTPSAddressToUse() throws {
        let problem = try only("""
            repositories:
              - name: app
                primary: /srv/app.git
                secondaries: [{name: aws, url: "ssh://APKAEIBAERJR2EXAMPLE@git-codecommit.eu-west-1.amazonaws.com/v1/repos/payments"}]
            """)
        #expect(problem.location.line == 4, "\(problem)")
        #expect(problem.message.contains("IAM takes only RSA public keys")
                && problem.message.contains("https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/payments"), "\(problem)")
    }

    @Test func unknownKeyIsRejectedWithASuggestion() throws {
        let problem = try only("""
            repositories:
              - name: app
                primary: /srv/app.git
                secondaries:
                  - name: backup
                    url: /srv/backup.git
                    froce: true
            """)
        #expect(problem.location.line == 7 && problem.location.column == 9)
        #expect(problem.message.contains("unknown key 'froce'") && problem.message.contains("did you mean 'force'"))
    }

    @Test func wrongTypeIsRejected() throws {
        let problem = try only("""
            defaults:
              max_deletes: many
            \(Self.app)
            """)
        #expect(problem.location.line == 2 && problem.location.column == 16)
        #expect(problem.message.contains("max_deletes must be a whole number"))
    }

    @Test func duplicateRepositoryNameIsRejected() throws {
        let problem = try only("""
            \(Self.app)
              - name: app
                primary: /srv/other.git
                secondaries: [{name: backup, url: /srv/other-backup.git}]
            """)
        #expect(problem.location.line == 5)
        #expect(problem.message.contains("duplicate repository name 'app'"))
    }

    @Test func duplicateSecondaryNameIsRejected() throws {
        let problem = try only("""
            repositories:
              - name: app
                primary: /srv/app.git
                secondaries:
                  - name: backup
                    url: /srv/one.git
                  - name: backup
                    url: /srv/two.git
            """)
        #expect(problem.location.line == 7 && problem.location.column == 9)
        #expect(problem.message.contains("duplicate secondary name 'backup'"))
    }

    @Test func notifyTargetsSayTheirFormatAndTakeOneURL() throws {
        let repositories = "repositories:\n  - {name: app, primary: https://git.example.com/a.git, secondaries: [{name: b, url: https://backup.example.com/a.git}]}"
        let format = try only("daemon:\n  notify:\n    - {url: https://hooks.example.com/x, format: teams}\n" + repositories)
        #expect(format.location.line == 3 && format.message.contains("format must be one of json, slack"), "\(format)")
        let both = try only("daemon:\n  notify:\n    - {url: https://hooks.example.com/x, url_env: SLACK_URL}\n" + repositories)
        #expect(both.message.contains("one of url, url_env and url_file"), "\(both)")
        let config = try ConfigLoader().parse("daemon:\n  notify:\n    - {url_env: SLACK_URL, format: slack}\n" + repositories,
                                              file: URL(fileURLWithPath: "/tmp/mirrors.yaml"))
        #expect(config.daemon.notify.first?.format == .slack && config.daemon.notify.first?.urlSecret == .environment("SLACK_URL"))
    }

    @Test func theStatusPageIsLoopbackOnlyUnlessSomeoneSignsIn() throws {
        let repositories = "repositories:\n  - {name: app, primary: https://git.example.com/a.git, secondaries: [{name: b, url: https://backup.example.com/a.git}]}"
        let open = try only("daemon:\n  ui:\n    access: any\n" + repositories)
        #expect(open.location.line == 3 && open.message.contains("set daemon.ui.users_file"), "\(open)")
        let unknown = try only("daemon:\n  ui:\n    access: public\n" + repositories)
        #expect(unknown.message.contains("daemon.ui.access must be loopback, any, off"), "\(unknown)")
        let missing = try only("daemon:\n  ui:\n    access: any\n    users_file: /nonexistent/ui-users\n" + repositories)
        #expect(missing.message.contains("daemon.ui.users_file '/nonexistent/ui-users' does not exist"), "\(missing)")
        let file = URL(fileURLWithPath: "/tmp/mirrors.yaml")
        #expect(try ConfigLoader().parse(repositories, file: file).daemon.ui.access == .loopback)
        let token = try sandbox.write("ui-token", "t\n")
        let signed = try ConfigLoader().parse("daemon:\n  ui:\n    access: any\n    token_file: \(token.path)\n" + repositories, file: file)
        #expect(signed.daemon.ui.access == .any && signed.daemon.ui.tokenFile?.path == token.path && signed.daemon.ui.signsIn)
    }

    @Test func secondaryEqualToItsPrimaryIsRejected() throws {
        let problem = try only("""
            repositories:
              - name: app
                primary: https://git.example.com/acme/app.git
                secondaries:
                  - name: loop
                    url: ssh://git@git.example.com/acme/app
            """)
        #expect(problem.location.line == 5)
        #expect(problem.message.contains("is the primary itself"))
    }

    @Test func unsafeNameIsRejected() throws {
        let problem = try only("""
            repositories:
              - name: ../../etc
                primary: /srv/app.git
                secondaries: [{name: backup, url: /srv/backup.git}]
            """)
        #expect(problem.location.line == 2 && problem.location.column == 11)
        #expect(problem.message.contains("not a safe name"))
    }

    @Test func missingCredentialReferenceIsRejected() throws {
        let problem = try only("""
            credentials:
              web: {token_env: FORGE_TOKEN}
            repositories:
              - name: app
                primary: /srv/app.git
                secondaries:
                  - name: public
                    url: https://forge.example.org/app.git
                    credentials: forge
            """)
        #expect(problem.location.line == 9 && problem.location.column == 22)
        #expect(problem.message.contains("credential 'forge' is not defined") && problem.message.contains("web"))
    }

    @Test func worldReadableSecretFileIsRejected() throws {
        _ = try sandbox.write("secrets/open", "token", mode: 0o644)
        let problem = try only("""
            credentials:
              web: {token_file: secrets/open}
            \(Self.app)
            """)
        #expect(problem.location.line == 2)
        #expect(problem.message.contains("readable by every user"))
    }

    @Test func kubernetesSecretLinksAreJudgedByTheFileTheyLeadTo() throws {
        // Given secrets laid out as Kubernetes mounts a Secret volume: `key -> ..data/key`, `..data ->
        // ..<timestamp>`, the files 0440 (defaultMode) and one 0644 behind another link
        let mount = try sandbox.directory("k8s-secrets")
        let stamped = mount.appendingPathComponent("..2026_11_22_10_00_00.123")
        try FileManager.default.createDirectory(at: stamped, withIntermediateDirectories: true)
        for (key, mode) in [("github-token", 0o440), ("open-token", 0o644)] {
            let file = stamped.appendingPathComponent(key)
            try "secret-\(key)".write(to: file, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file.path)
        }
        try FileManager.default.createSymbolicLink(atPath: mount.appendingPathComponent("..data").path, withDestinationPath: stamped.lastPathComponent)
        for key in ["github-token", "open-token"] {
            try FileManager.default.createSymbolicLink(atPath: mount.appendingPathComponent(key).path, withDestinationPath: "..data/\(key)")
        }

        // Then the 0440 file behind its link is accepted
        _ = try ConfigLoader().parse("""
            credentials:
              web: {token_file: k8s-secrets/github-token}
            repositories:
              - name: app
                primary: /srv/app.git
                secondaries: [{name: backup, url: /srv/backup.git, credentials: web}]
            """, file: file, environment: [:])
        // And the world-readable one is refused with the Kubernetes fix, not chmod
        let problem = try only("""
            credentials:
              web: {token_file: k8s-secrets/open-token}
            repositories:
              - name: app
                primary: /srv/app.git
                secondaries: [{name: backup, url: /srv/backup.git, credentials: web}]
            """)
        #expect(problem.message.contains("readable by every user (mode 644)") && problem.message.contains("defaultMode"), "\(problem.message)")
    }

    @Test func stateDirDefaultsToGITMIRROR_STATE_DIRThenBesideTheFile() throws {
        let yaml = """
            \(Self.app)
            """
        let fromEnvironment = try ConfigLoader().parse(yaml, file: file, environment: ["GITMIRROR_STATE_DIR": "/var/lib/gitmirror"])
        #expect(fromEnvironment.stateDirectory.path == "/var/lib/gitmirror")
        let beside = try ConfigLoader().parse(yaml, file: file, environment: [:])
        #expect(beside.stateDirectory.path == file.deletingLastPathComponent().appendingPathComponent(".gitmirror").path)
        let explicit = try ConfigLoader().parse("state_dir: /srv/state\n" + yaml, file: file, environment: ["GITMIRROR_STATE_DIR": "/var/lib/gitmirror"])
        #expect(explicit.stateDirectory.path == "/srv/state")
    }

    @Test func everyProblemIsReportedAtOnce() throws {
        let found = try problems("""
            state_dir: state
            colour: blue
            repositories:
              - name: app
                primary: http://git.example.com/app.git
                secondaries:
                  - name: pulls
                    url: /srv/pulls.git
                    refs: ["refs/pull/*"]
                  - name: bad name
                    url: /srv/x.git
                  - name: fine
                    url: /srv/fine.git
                    force: sometimes
            """)
        let lines = found.map(\.location.line)
        #expect(lines == [2, 5, 9, 10, 14], "\(found)")
        #expect(found.allSatisfy { $0.description.hasPrefix("\(file.path):") && $0.description.contains(": error: ") })
    }

    @Test func invalidYAMLPointsAtTheSyntaxError() throws {
        let problem = try only("repositories:\n  - name: app\n    primary: [unclosed\n")
        #expect(problem.location.line >= 3)
        #expect(problem.message.contains("invalid YAML"))
    }
}

/// A file that cannot be a configuration says why, where.
@Suite(.onTestThreads) struct ConfigFileTests {
    func problem(loading file: URL) throws -> ConfigProblem {
        var problems: [ConfigProblem] = []
        do {
            _ = try ConfigLoader().load(file: file)
        } catch {
            problems = error.problems
        }
        #expect(problems.count == 1, "\(problems)")
        return try #require(problems.first, "expected \(file.path) to be rejected")
    }

    @Test func aDirectoryIsNotAConfigurationFile() throws {
        let sandbox = try Sandbox("config-directory")
        let found = try problem(loading: sandbox.root)
        #expect(found.message.contains("this is a directory"), "\(found)")
    }

    @Test func invalidUTF8IsShownAtItsByte() throws {
        let sandbox = try Sandbox("config-utf8")
        let file = sandbox.path("mirrors.yaml")
        try Data("repositories:\n  - name: caf".utf8 + [0xE9] + Data("\n".utf8)).write(to: file)
        let found = try problem(loading: file)
        #expect(found.location.line == 2 && found.location.column == 14, "\(found)")
        #expect(found.message.contains("not UTF-8"))
    }

    @Test func aMissingFileSaysHowToNameAnother() throws {
        let sandbox = try Sandbox("config-missing")
        let found = try problem(loading: sandbox.path("nope.yaml"))
        #expect(found.message.contains("no such file") && found.message.contains("--config FILE"), "\(found)")
    }
}

/// `retention:` bounds the state database; bad values are refused where they stand.
@Suite(.onTestThreads) struct RetentionConfigTests {
    let file = URL(fileURLWithPath: "/tmp/gitmirror-retention/mirrors.yaml")
    let repositories = """
        \(ConfigTests.app)
        """

    @Test func defaultsKeepQuietRunsNinetyDaysAndTheJournalForever() throws {
        let config = try ConfigLoader().parse(repositories, file: file)
        #expect(config.retention.runs == TimeInterval(90 * 86400))
        #expect(config.retention.journal == nil)
        // Quarantined caches (which may hold a backup) stay; LFS objects unused for 30 days go
        #expect(config.retention.quarantine == nil)
        #expect(config.retention.lfs == TimeInterval(30 * 86400))
    }

    @Test func filesRetentionTakesADurationOfADayOrMoreOrForever() throws {
        let config = try ConfigLoader().parse("retention:\n  quarantine: 14d\n  lfs: forever\n" + repositories, file: file)
        #expect(config.retention.quarantine == TimeInterval(14 * 86400))
        #expect(config.retention.lfs == nil)
        do {
            _ = try ConfigLoader().parse("retention:\n  quarantine: 1h\n  lfs: later\n" + repositories, file: file)
            Issue.record("expected the configuration to be rejected")
        } catch {
            let found = error.problems.map { "\($0.location.line):\($0.location.column) \($0.message)" }
            #expect(found.contains { $0.hasPrefix("2:15 ") && $0.contains("retention.quarantine must be at least 1d") }, "\(found)")
            #expect(found.contains { $0.hasPrefix("3:8 ") && $0.contains("retention.lfs must be a duration such as 30d, or forever") }, "\(found)")
        }
    }

    @Test func badValuesAreReportedAtTheirLineAndColumn() throws {
        let yaml = "retention:\n  runs: soon\n  journal: 2y\n  keep: all\n" + repositories
        do {
            _ = try ConfigLoader().parse(yaml, file: file)
            Issue.record("expected the configuration to be rejected")
        } catch {
            let found = error.problems.map { "\($0.location.line):\($0.location.column) \($0.message)" }
            #expect(found.contains { $0.hasPrefix("2:9 ") && $0.contains("retention.runs must be a duration") }, "\(found)")
            #expect(found.contains { $0.hasPrefix("3:12 ") && $0.contains("retention.journal must be a duration such as 365d, or forever") }, "\(found)")
            #expect(found.contains { $0.hasPrefix("4:3 ") && $0.contains("unknown key 'keep'") }, "\(found)")
        }
    }

    @Test func aJournalShorterThanTheRunsIsRefused() throws {
        do {
            _ = try ConfigLoader().parse("retention:\n  runs: 30d\n  journal: 7d\n" + repositories, file: file)
            Issue.record("expected the configuration to be rejected")
        } catch {
            #expect(error.problems.count == 1)
            #expect(error.problems.first?.message.contains("retention.journal (7d) is shorter than retention.runs (30d)") == true, "\(error)")
        }
    }

    @Test func validRetentionIsApplied() throws {
        let config = try ConfigLoader().parse("retention:\n  runs: 14d\n  journal: 365d\n" + repositories, file: file)
        #expect(config.retention.runs == TimeInterval(14 * 86400))
        #expect(config.retention.journal == TimeInterval(365 * 86400))
        let forever = try ConfigLoader().parse("retention:\n  journal: forever\n" + repositories, file: file)
        #expect(forever.retention.journal == nil)
    }
}
