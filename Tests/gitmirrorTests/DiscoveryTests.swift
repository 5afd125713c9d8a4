import Foundation
import MirrorCore
import Testing
import TestSupport

/// `discover:` against loopback forge APIs that follow each documented contract, with real git
/// servers behind them: what is listed, filtered, created, mirrored and reported.
@Suite(.onTestThreads) struct DiscoveryTests {
    static let sourceToken = "ghp_SourceCanary0123456789abcdefABCDEF"
    static let backupToken = "ghp_BackupCanary9876543210fedcbaFEDCBA"

    /// A GitHub-style organisation `acme` whose repositories are bare repositories under `primaries/`,
    /// served over HTTPS on the API's host (as a forge serves its clones), and a GitHub-style
    /// destination `backup` (API + HTTPS git server) that creates repositories.
    struct Stage {
        let sandbox: Sandbox
        let primaries: URL
        let source: ForgeAPIServer
        let destination: ForgeAPIServer
        let origin: HTTPSServer
        let git: HTTPSServer
        let config: URL

        init(_ name: String, maxPerPage: Int = 3) throws {
            sandbox = try Sandbox(name)
            primaries = try sandbox.directory("primaries")
            let served = try sandbox.directory("served")
            git = try HTTPSServer(sandbox: sandbox, root: served, user: "x-access-token", password: DiscoveryTests.backupToken, lfs: true)
            origin = try HTTPSServer(sandbox: sandbox, root: primaries, user: "x-access-token", password: DiscoveryTests.sourceToken,
                                     authority: git.authority, lfs: true)
            source = try ForgeAPIServer(sandbox: sandbox, kind: .github, token: DiscoveryTests.sourceToken, accounts: ["acme": "Organization"],
                                        cloneBase: "https://127.0.0.1:\(origin.port)", maxPerPage: maxPerPage)
            destination = try ForgeAPIServer(sandbox: sandbox, kind: .github, token: DiscoveryTests.backupToken, accounts: ["backup": "Organization"],
                                             gitRoot: served)
            config = sandbox.path("mirrors.yaml")
        }

        /// Puts an LFS object of a primary's on the origin's LFS server, as a push with git-lfs would.
        func publishLFSObject(_ oid: String, of name: String) throws {
            let stored = origin.lfsStorage!.appendingPathComponent("acme/\(name)/\(oid)")
            try FileManager.default.createDirectory(at: stored.deletingLastPathComponent(), withIntermediateDirectories: true)
            let local = primaries.appendingPathComponent("acme/\(name).git/lfs/objects/\(oid.prefix(2))/\(oid.dropFirst(2).prefix(2))/\(oid)")
            try FileManager.default.copyItem(at: local, to: stored)
        }

        /// A repository of the organisation: listed by the API and held under primaries/.
        @discardableResult
        func repository(_ name: String, defaultBranch: String = "main", description: String? = nil, archived: Bool = false, fork: Bool = false) throws -> BareRepository {
            let bare = try BareRepository.create(at: primaries.appendingPathComponent("acme/\(name).git"))
            try bare.commit("\(name) first", on: defaultBranch)
            try bare.tag("v1", at: "refs/heads/\(defaultBranch)")
            _ = try Shell.run(["git", "--git-dir=\(bare.path)", "symbolic-ref", "HEAD", "refs/heads/\(defaultBranch)"])
            try source.add("acme/\(name)", description: description, archived: archived, fork: fork, defaultBranch: defaultBranch)
            return bare
        }

        func served(_ name: String) -> BareRepository { BareRepository(url: git.root.appendingPathComponent("backup/\(name).git")) }

        func write(extra: String = "") throws {
            _ = try sandbox.write("mirrors.yaml", """
                state_dir: state
                credentials:
                  source:
                    token_env: SOURCE_TOKEN
                    ca_file: \(git.authority.certificate.path)
                  backup:
                    token_env: BACKUP_TOKEN
                    ca_file: \(git.authority.certificate.path)
                discover:
                  - github: acme
                    api: \(source.api)
                    credentials: source
                    archived: false
                    forks: false
                    exclude: ["acme/legacy-*"]
                    secondaries:
                      - name: backup
                        url: "\(git.url("backup/{name}.git"))"
                        forge: github
                        api: \(destination.api)
                        credentials: backup
                        create: true
                        lfs: true
                \(extra)
                """)
        }

        var environment: [String: String] { ["SOURCE_TOKEN": DiscoveryTests.sourceToken, "BACKUP_TOKEN": DiscoveryTests.backupToken] }

        @discardableResult
        func gitmirror(_ arguments: String...) throws -> Shell.Output {
            try Gitmirror.run(arguments, config: config, environment: environment)
        }
    }

    @Test func anOrganisationIsListedAcrossPagesFilteredCreatedAndMirroredWithDefaultBranchesAndLFSObjects() throws {
        // Given an organisation of seven repositories over three pages: one archived, one fork, one excluded by name
        let stage = try Stage("discover-github")
        let alpha = try stage.repository("alpha", defaultBranch: "trunk", description: "The alpha service")
        let model = Data((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let object = try alpha.commitLFSObject(model, named: "model.bin", on: "trunk")
        try stage.publishLFSObject(object, of: "alpha")
        try stage.repository("beta")
        try stage.repository("epsilon")
        try stage.repository("gamma", archived: true)
        try stage.repository("delta", fork: true)
        try stage.repository("legacy-x")
        try stage.repository("zeta")
        try stage.write()

        // When discover runs, it lists every page and changes nothing
        let listed = try stage.gitmirror("discover", "--json")
        #expect(listed.status == 0, "\(listed)")
        let document = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any] ?? [:]
        let entries = document["repositories"] as? [[String: Any]] ?? []
        let status = Dictionary(uniqueKeysWithValues: entries.map { ($0["path"] as? String ?? "", $0["status"] as? String ?? "") })
        #expect(status == ["acme/alpha": "mirrored", "acme/beta": "mirrored", "acme/epsilon": "mirrored", "acme/zeta": "mirrored",
                           "acme/gamma": "excluded", "acme/delta": "excluded", "acme/legacy-x": "excluded"])
        #expect(stage.source.requests.filter { $0.contains("/orgs/acme/repos") }.count == 3, "\(stage.source.requests)")
        #expect(stage.destination.requests.isEmpty)
        let recorded = FileManager.default.fileExists(atPath: stage.sandbox.path("state/gitmirror.sqlite").path) ? try Gitmirror.store(stage.config).discovered() : []
        #expect(recorded.isEmpty)

        // When sync runs
        let first = try stage.gitmirror("sync")

        // Then each missing secondary was created (private, described) and holds its primary's refs with its default branch
        #expect(first.status == 0, "\(first)")
        for name in ["alpha", "beta", "epsilon", "zeta"] {
            let created = try #require(stage.destination.repository("backup/\(name)"), "\(name)")
            #expect(created["visibility"] as? String == "private")
            #expect(try stage.served(name).refs() == BareRepository(url: stage.primaries.appendingPathComponent("acme/\(name).git")).refs())
        }
        #expect(stage.destination.repository("backup/alpha")?["description"] as? String == "The alpha service")
        #expect(stage.destination.repository("backup/gamma") == nil)
        #expect(try Shell.run(["git", "--git-dir=\(stage.served("alpha").path)", "symbolic-ref", "HEAD"]).stdout.contains("refs/heads/trunk"))
        #expect(try stage.served("alpha").refs()["refs/heads/trunk"] == alpha.refs()["refs/heads/trunk"])
        #expect(first.stdout.contains("default branch set to trunk"), "\(first)")
        // and alpha's LFS object reached the backup's LFS server before its refs
        #expect(FileManager.default.contents(atPath: stage.git.lfsStorage!.appendingPathComponent("backup/alpha/\(object)").path) == model)
        let rows = try Gitmirror.store(stage.config).remoteStates()
        #expect(rows.first { $0.repository == "alpha" && $0.remote == "backup" }?.head == "refs/heads/trunk")
        #expect(try Gitmirror.store(stage.config).discovered().count == 7)

        // When sync runs again, nothing is created, set or pushed
        let posts = stage.destination.requests.filter { !$0.hasPrefix("GET") }.count
        let second = try stage.gitmirror("sync", "--json")
        #expect(second.status == 0, "\(second)")
        #expect(stage.destination.requests.filter { !$0.hasPrefix("GET") }.count == posts, "\(stage.destination.requests)")
        let reports = try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(reports.count == 4)
        let results = reports.flatMap { ($0["secondaries"] as? [[String: Any]] ?? []).map { $0["result"] as? String ?? "" } }
        #expect(results == ["up_to_date", "up_to_date", "up_to_date", "up_to_date"], "\(second.stdout)")

        // And no token reached the state, the output or the logs
        let canaries = [Self.sourceToken, Self.backupToken]
        let scan = stage.sandbox.files(under: "state", containing: canaries)
        #expect(scan.read > 0)
        #expect(scan.hits.isEmpty, "\(scan.hits)")
        for output in [listed, first, second] { #expect(!canaries.contains { output.stdout.contains($0) || output.stderr.contains($0) }) }
    }

    @Test func aRepositoryThatDisappearsIsUnscheduledAndReportedAndARateLimitIsWaitedOutOrDeferred() throws {
        // Given an organisation mirrored once
        let stage = try Stage("discover-gone", maxPerPage: 2)
        try stage.repository("alpha")
        try stage.repository("beta")
        try stage.repository("gamma")
        try stage.write()
        #expect(try stage.gitmirror("sync").status == 0)

        // When beta disappears from the organisation and the API answers the first listing with a short 429
        try stage.source.remove("acme/beta")
        try stage.source.rateLimit(count: 1, retryAfter: 1)
        let before = stage.source.requests.count
        let output = try stage.gitmirror("sync", "--json")

        // Then the limit was waited out and asked again once, beta is reported gone, not synced, and nothing of it is deleted
        #expect(output.status == 0, "\(output)")
        let asked = stage.source.requests.dropFirst(before).filter { $0.contains("/orgs/acme/repos") }
        #expect(asked.count == 2, "\(asked)")   // the refused page, then the same page again (two repositories: one page)
        #expect(output.stderr.contains("acme/beta: no longer listed"), "\(output.stderr)")
        let reports = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(Set(reports.compactMap { $0["repository"] as? String }) == ["alpha", "gamma"])
        #expect(FileManager.default.fileExists(atPath: stage.sandbox.path("state/cache/beta.git").path))
        #expect(try !stage.served("beta").refs().isEmpty)
        let status = try stage.gitmirror("status")
        #expect(status.stdout.contains("github:acme@127.0.0.1:\(stage.source.port) acme/beta since"), "\(status)")
        #expect(!status.stdout.contains("beta  "), "\(status)")

        // When the quota is used up for an hour
        try stage.source.rateLimit(count: 5, retryAfter: 3600, style: "reset")
        let limited = try stage.gitmirror("sync", "--json")

        // Then the listing is deferred (asked once, not hammered), the last listing is synced, and the run says so
        #expect(limited.status == 1, "\(limited)")
        #expect(limited.stderr.contains("rate_limited"), "\(limited.stderr)")
        #expect((stage.source.state["rate_limit"] as? [String: Any])?["count"] as? Int == 4)
        let synced = try JSONSerialization.jsonObject(with: Data(limited.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(Set(synced.compactMap { $0["repository"] as? String }) == ["alpha", "gamma"])
        let sources = try Gitmirror.store(stage.config).discoverySources()
        #expect(sources.first?.lastErrorClass == .rateLimited)
    }
}

/// `create: true` and default branches on each forge, for a written repository.
@Suite(.onTestThreads) struct ForgeCreationTests {
    static let token = "glpat-CreationCanary0123456789abcdef"

    /// A scenario whose secondary `forge` is mirrors/app on an HTTPS git server with a forge API in
    /// front of it (`apiToken`: what the API accepts), with create: true.
    struct Stage {
        let scenario: Scenario
        let served: URL
        let api: ForgeAPIServer

        init(_ name: String, kind: ForgeKind, apiToken: String = ForgeCreationTests.token, extra: String = "") throws {
            scenario = try Scenario(name)
            served = try scenario.sandbox.directory("served-https")
            api = try ForgeAPIServer(sandbox: scenario.sandbox, kind: kind, token: apiToken,
                                     accounts: ["mirrors": kind == .gitlab ? "Group" : "Organization"], gitRoot: served)
            let git = try HTTPSServer(sandbox: scenario.sandbox, root: served,
                                      user: kind == .gitlab ? "oauth2" : kind == .github ? "x-access-token" : "git", password: ForgeCreationTests.token)
            try scenario.configure(secondaries: """
                - name: forge
                  url: \(git.url("mirrors/app.git"))
                  forge: \(kind.rawValue)
                  api: \(api.api)
                  credentials: forge
                  create: true
                  \(extra)
                """, credentials: "forge:\n  token_env: FORGE_TOKEN\n  ca_file: \(git.authority.certificate.path)")
        }

        var mirrored: BareRepository { BareRepository(url: served.appendingPathComponent("mirrors/app.git")) }

        func sync() throws -> Shell.Output { try scenario.gitmirror("sync", environment: ["FORGE_TOKEN": ForgeCreationTests.token]) }
    }

    @Test(arguments: [ForgeKind.github, .gitlab, .gitea])
    func aMissingSecondaryIsCreatedInItsNamespaceAndGetsTheDefaultBranch(kind: ForgeKind) throws {
        // Given a primary whose default branch is trunk, and a forge where mirrors/app does not exist yet
        let stage = try Stage("create-\(kind.rawValue)", kind: kind, extra: "visibility: internal")
        let primary = stage.scenario.primary
        try primary.commit("first", on: "trunk")
        try primary.commit("other", on: "main")
        _ = try Shell.run(["git", "--git-dir=\(primary.path)", "symbolic-ref", "HEAD", "refs/heads/trunk"])

        // When gitmirror syncs twice
        let first = try stage.sync()
        let changes = stage.api.requests.filter { !$0.hasPrefix("GET") }
        let second = try stage.sync()

        // Then the repository was created once, in the namespace, with the visibility asked for, holds every ref, and HEAD is trunk
        #expect(first.status == 0, "\(first)")
        #expect(second.status == 0, "\(second)")
        let created = try #require(stage.api.repository("mirrors/app"))
        // Gitea has no internal visibility through this call: it is private there.
        #expect(created["visibility"] as? String == (kind == .gitea ? "private" : "internal"))
        #expect(try stage.mirrored.refs() == primary.refs())
        #expect(try Shell.run(["git", "--git-dir=\(stage.mirrored.path)", "symbolic-ref", "HEAD"]).stdout.contains("refs/heads/trunk"))
        #expect(changes.count == 2, "\(changes)")   // the creation and the default branch
        #expect(stage.api.requests.filter { !$0.hasPrefix("GET") }.count == 2, "\(stage.api.requests)")
        #expect(try stage.scenario.state("forge")?.head == "refs/heads/trunk")
        #expect(!first.stdout.contains(Self.token) && !first.stderr.contains(Self.token))
    }

    @Test func aCreatorThatLosesTheRaceTakesTheRepositoryTheWinnerMade() throws {
        // Given a Gitea whose next create finds that another creator made the repository first
        let stage = try Stage("create-race", kind: .gitea)
        try stage.scenario.primary.commit("first")
        try stage.api.update { $0["create_race"] = true }

        let output = try stage.sync()

        // Then the 409 is no failure: the repository is mirrored
        #expect(output.status == 0, "\(output)")
        #expect(stage.api.requests.contains { $0.hasPrefix("POST /api/v1/orgs/mirrors/repos") })
        #expect(try stage.mirrored.refs() == stage.scenario.primary.refs())
    }

    @Test func aRefusedTokenIsAnAuthFailureThatNamesTheCall() throws {
        // Given an API that takes another token than the one configured
        let stage = try Stage("create-refused", kind: .github, apiToken: "ghp_TheRightToken0123456789abcdefABCD")
        try stage.scenario.primary.commit("first")

        let output = try stage.sync()

        #expect(output.status == 1, "\(output)")
        let state = try #require(try stage.scenario.state("forge"))
        #expect(state.lastErrorClass == .auth)
        #expect(state.lastError?.contains("HTTP 401") == true, "\(state.lastError ?? "")")
        #expect(stage.api.repository("mirrors/app") == nil)
    }
}

/// GitLab groups: subgroups, X-Next-Page pagination, collisions and written repositories.
@Suite(.onTestThreads) struct GitLabDiscoveryTests {
    @Test func subgroupsAreListedPageByPageAndCollidingNamesAreReportedNotMerged() throws {
        // Given a group whose subgroups hold two projects named tool, and a written repository named api
        let sandbox = try Sandbox("discover-gitlab")
        let api = try ForgeAPIServer(sandbox: sandbox, kind: .gitlab, token: "glpat-DiscoverCanary0123456789ab", accounts: ["platform": "Group"],
                                     maxPerPage: 2)
        try api.update { $0["link_header"] = false; $0["clone_base"] = "http://127.0.0.1:\(api.port)/git" }
        for path in ["platform/api", "platform/web", "platform/a/tool", "platform/b/tool", "platform/b/cli"] { try api.add(path) }
        let backup = sandbox.path("backup").path
        let config = try sandbox.write("mirrors.yaml", """
            state_dir: state
            credentials:
              gitlab:
                token_env: GITLAB_TOKEN
            repositories:
              - name: api
                primary: \(sandbox.path("elsewhere/api.git").path)
                secondaries:
                  - name: backup
                    url: \(sandbox.path("elsewhere/api-backup.git").path)
            discover:
              - gitlab: platform
                api: \(api.api)
                credentials: gitlab
                secondaries:
                  - name: backup
                    url: "\(backup)/{path}.git"
            """)

        let output = try Gitmirror.run(["discover", "--json"], config: config, environment: ["GITLAB_TOKEN": "glpat-DiscoverCanary0123456789ab"])

        // Then every page was read through X-Next-Page alone, and the collision and the written name are reported
        #expect(output.status == 1, "\(output)")
        let document = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any] ?? [:]
        let entries = document["repositories"] as? [[String: Any]] ?? []
        let status = Dictionary(uniqueKeysWithValues: entries.map { ($0["path"] as? String ?? "", $0["status"] as? String ?? "") })
        #expect(status == ["platform/api": "written", "platform/web": "mirrored", "platform/a/tool": "collision", "platform/b/tool": "collision",
                           "platform/b/cli": "mirrored"], "\(output.stdout)")
        let collision = entries.first { $0["path"] as? String == "platform/a/tool" }?["reason"] as? String ?? ""
        #expect(collision.contains("platform/b/tool"), "\(collision)")
        #expect(api.requests.filter { $0.contains("/groups/platform/projects") }.count == 3, "\(api.requests)")
        #expect(api.requests.allSatisfy { !$0.contains("glpat-") })
        let web = entries.first { $0["path"] as? String == "platform/web" }
        #expect((web?["secondaries"] as? [[String: Any]])?.first?["url"] as? String == "\(backup)/platform/web.git")
    }
}

/// The daemon lists its sources at start and again on a reload: new repositories are scheduled,
/// vanished ones unscheduled; local bare secondaries get the primary's HEAD written.
@Suite(.onTestThreads) struct DaemonDiscoveryTests {
    @Test func aRepositoryThatAppearsIsMirroredAndOneThatVanishesIsUnscheduled() throws {
        // Given a daemon mirroring an organisation of one repository (default branch trunk) to local bare repositories
        let sandbox = try Sandbox("daemon-discover")
        let primaries = try sandbox.directory("primaries")
        // A public forge: its clones need no credential, over http as its API is.
        let origin = try HTTPSServer(sandbox: sandbox, root: primaries, user: "nobody", password: "unused", tls: false, anonymousRead: true)
        let api = try ForgeAPIServer(sandbox: sandbox, kind: .gitea, token: nil, accounts: ["acme": "Organization"], cloneBase: "http://127.0.0.1:\(origin.port)")
        func repository(_ name: String, branch: String) throws -> BareRepository {
            let bare = try BareRepository.create(at: primaries.appendingPathComponent("acme/\(name).git"))
            try bare.commit("\(name) first", on: branch)
            _ = try Shell.run(["git", "--git-dir=\(bare.path)", "symbolic-ref", "HEAD", "refs/heads/\(branch)"])
            try api.add("acme/\(name)", defaultBranch: branch)
            return bare
        }
        let alpha = try repository("alpha", branch: "trunk")
        let backupAlpha = try BareRepository.create(at: sandbox.path("backup/alpha.git"))
        let backupBeta = try BareRepository.create(at: sandbox.path("backup/beta.git"))
        let config = try sandbox.write("mirrors.yaml", """
            state_dir: state
            daemon:
              interval: 1h
              start_spread: 0s
            discover:
              - gitea: acme
                api: \(api.api)
                secondaries:
                  - name: backup
                    url: "\(sandbox.path("backup").path)/{name}.git"
            """)
        let daemon = try DaemonProcess(sandbox: sandbox, config: config)
        try daemon.waitUntilReady()
        #expect(eventually(within: 30) { try backupAlpha.refs() == alpha.refs() }, "\(daemon.logText)")
        #expect(eventually(within: 10) { try Shell.run(["git", "--git-dir=\(backupAlpha.path)", "symbolic-ref", "HEAD"]).stdout.contains("trunk") })

        // When beta appears in the organisation and the daemon reloads
        let beta = try repository("beta", branch: "main")
        daemon.process.signal(SIGHUP)

        // Then beta is discovered and mirrored without waiting for the hour
        #expect(eventually(within: 30) { try backupBeta.refs() == beta.refs() }, "\(daemon.logText)")
        #expect(daemon.logText.contains("repository discovered"), "\(daemon.logText)")

        // When alpha vanishes from the organisation
        try api.remove("acme/alpha")
        daemon.process.signal(SIGHUP)

        // Then it is unscheduled and reported, and its mirror and cache are left as they are
        #expect(eventually(within: 30) { daemon.logText.contains("no longer listed by its source") }, "\(daemon.logText)")
        #expect(eventually(within: 10) { daemon.logText.contains("no longer scheduled") }, "\(daemon.logText)")
        #expect(try backupAlpha.refs() == alpha.refs())
        #expect(FileManager.default.fileExists(atPath: sandbox.path("state/cache/alpha.git").path))
    }
}

/// Where no API can set a secondary's HEAD, the difference is shown, not hidden.
@Suite(.onTestThreads) struct HeadDifferenceTests {
    @Test func statusShowsASecondaryWhoseHeadIsNotThePrimarys() throws {
        // Given a primary whose default branch is trunk and a git daemon secondary whose HEAD is main
        let scenario = try Scenario("head-differs")
        try scenario.primary.commit("first", on: "trunk")
        try scenario.primary.commit("second", on: "main")
        _ = try Shell.run(["git", "--git-dir=\(scenario.primary.path)", "symbolic-ref", "HEAD", "refs/heads/trunk"])
        let secondary = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(secondary))")

        // When it is synced
        let sync = try scenario.gitmirror("sync")

        // Then the refs are in step, the sync says what to run on the server, and status lists the difference
        #expect(sync.status == 0, "\(sync)")
        #expect(sync.stdout.contains("git symbolic-ref HEAD refs/heads/trunk"), "\(sync)")
        let status = try scenario.gitmirror("status")
        #expect(status.status == 0, "\(status)")
        #expect(status.stdout.contains("app/backup: HEAD points at main, the primary's at trunk"), "\(status)")
        let json = try scenario.gitmirror("status", "--json")
        let rows = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(rows.first { $0["remote"] as? String == "backup" }?["head_differs"] as? Bool == true)
        #expect(rows.first { $0["remote"] as? String == "primary" }?["head"] as? String == "refs/heads/trunk")

        // And the next sync does not repeat the advice while nothing changed; status still shows it
        let again = try scenario.gitmirror("sync")
        #expect(again.status == 0 && !again.stdout.contains("symbolic-ref"), "\(again)")
        #expect(try scenario.gitmirror("status").stdout.contains("app/backup: HEAD points at main, the primary's at trunk"))

        // And when the primary's default branch changes, the advice comes once more
        _ = try Shell.run(["git", "--git-dir=\(scenario.primary.path)", "symbolic-ref", "HEAD", "refs/heads/main"])
        _ = try Shell.run(["git", "--git-dir=\(secondary.path)", "symbolic-ref", "HEAD", "refs/heads/trunk"])
        let changed = try scenario.gitmirror("sync")
        #expect(changed.stdout.contains("git symbolic-ref HEAD refs/heads/main"), "\(changed)")
    }
}
