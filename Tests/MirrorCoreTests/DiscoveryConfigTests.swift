import Foundation
import Testing
import TestSupport
@testable import MirrorCore

/// `discover:` entries and forge settings: what loads, what expansion makes of a listing, and every
/// mistake reported where it is written.
@Suite(.onTestThreads) struct DiscoveryConfigTests {
    let documents: ConfigDocuments
    var sandbox: Sandbox { documents.sandbox }
    var file: URL { documents.file }

    init() throws {
        documents = try ConfigDocuments("discovery-config", loader: ConfigLoader(defaultRegion: "eu-west-1"))
    }

    func load(_ yaml: String) throws -> Config { try documents.load(yaml) }

    /// Each problem as `LINE: message`.
    func problems(_ yaml: String) -> [String] {
        documents.problems(yaml).map { "\($0.location.line): \($0.message)" }
    }

    static let source = """
        \(ConfigDocuments.acmeOnGitHub)
            include: ["acme/*"]
            exclude: ["acme/legacy-*"]
            forks: false
            visibility: [private, internal]
            name: "gh-{name}"
            secondaries:
              - name: codecommit
                url: "codecommit::eu-west-1://{name}"
                create: true
              - name: backup
                url: "https://gitlab.example.com/mirrors/{path}.git"
                forge: gitlab
                credentials: github
                create: true
                visibility: internal
        """

    @Test func aSourceLoadsWithoutRepositoriesAndExpandsEachListedRepository() throws {
        let config = try load(Self.source)
        #expect(config.repositories.isEmpty)
        let source = try #require(config.discover.first)
        #expect(source.id == "github:acme")
        #expect(source.kind == .forge(ForgeEndpoint(kind: .github, api: URL(string: "https://api.github.com")!)))

        let listed = [
            DiscoveredRepository(path: "acme/widget", name: "widget", cloneURL: "https://github.com/acme/widget.git", description: "Widgets"),
            DiscoveredRepository(path: "acme/legacy-api", name: "legacy-api", cloneURL: "https://github.com/acme/legacy-api.git"),
            DiscoveredRepository(path: "acme/fork", name: "fork", cloneURL: "https://github.com/acme/fork.git", fork: true),
            DiscoveredRepository(path: "acme/site", name: "site", cloneURL: "https://github.com/acme/site.git", visibility: "public"),
        ]
        let (expanded, entries) = config.expanded(with: ["github:acme": listed])
        #expect(entries.map(\.status.word) == ["excluded", "excluded", "excluded", "mirrored"])
        #expect(entries.map { $0.status.reason ?? "" } == ["a fork (forks: false)", "matches exclude 'acme/legacy-*'",
                                                         "public (visibility: internal, private)", ""])
        let widget = try #require(expanded.mirror(named: "gh-widget"))
        #expect(widget.origin == MirrorOrigin(source: "github:acme", path: "acme/widget"))
        #expect(widget.primary.url.gitURL == "https://github.com/acme/widget.git" && widget.primary.credentialName == "github")
        #expect(widget.secondaries[0].url.codeCommit?.repository == "widget" && widget.secondaries[0].create)
        #expect(widget.secondaries[0].description == "Widgets")
        #expect(widget.secondaries[1].url.path == "/mirrors/acme/widget.git")
        #expect(widget.secondaries[1].forge?.api.absoluteString == "https://gitlab.example.com/api/v4" && widget.secondaries[1].visibility == "internal")
    }

    @Test func writtenRepositoriesWinAndCollisionsAreReportedNotMerged() throws {
        let config = try load("""
            repositories:
              - name: widget
                primary: https://example.com/widget.git
                secondaries:
                  - name: backup
                    url: https://backup.example.com/widget.git
            discover:
              - gitlab: platform
                secondaries:
                  - name: backup
                    url: "https://backup.example.com/{name}.git"
            """)
        let listed = ["widget", "a/tool", "b/tool", "c/api"].map { path in
            DiscoveredRepository(path: "platform/\(path)", name: String(path.split(separator: "/").last!), cloneURL: "https://gitlab.com/platform/\(path).git")
        }
        let (expanded, entries) = config.expanded(with: ["gitlab:platform": listed])
        #expect(Dictionary(uniqueKeysWithValues: entries.map { ($0.repository.path, $0.status.word) })
                == ["platform/widget": "written", "platform/a/tool": "collision", "platform/b/tool": "collision", "platform/c/api": "mirrored"])
        #expect(expanded.repositories.map(\.name).sorted() == ["api", "widget"])
        #expect(expanded.mirror(named: "widget")?.primary.url.gitURL == "https://example.com/widget.git")
    }

    @Test func mistakesAreReportedWhereTheyAreWritten() {
        let found = problems("""
            discover:
              - github: acme
                gitlab: platform
                secondaries: []
              - gitea: infra
                secondaries:
                  - name: backup
                    url: "https://backup.example.com/{repo}.git"
              - gitlab: platform
                subgroups: maybe
                secondaries:
                  - name: backup
                    url: "https://backup.example.com/all.git"
              - codecommit: nowhere
                secondaries:
                  - name: b
                    url: "codecommit::eu-west-1://{path}-x"
              - github: acme
                name: fixed
                visibility: secret
                secondaries:
                  - name: plain
                    url: "git@backup.example.com:{name}.git"
                    create: true
            """)
        #expect(found.contains("3: a discover entry takes one source; split github and gitlab into two entries"), "\(found)")
        #expect(found.contains { $0.hasPrefix("5: a gitea: source needs api:") }, "\(found)")
        #expect(found.contains("8: unknown placeholder {repo} in url; use {name}, {path} or {owner}"), "\(found)")
        #expect(found.contains("10: subgroups must be true or false"), "\(found)")
        #expect(found.contains { $0.hasPrefix("13: the url of a discovered repository's secondary must contain {name} or {path}") }, "\(found)")
        #expect(found.contains("14: codecommit: takes an AWS region such as eu-west-1 (got 'nowhere')"), "\(found)")
        #expect(found.contains { $0.hasPrefix("19: name must contain {name}, {path} or {owner}") }, "\(found)")
        #expect(found.contains("20: visibility takes public, private, internal or all (got 'secret')"), "\(found)")
        #expect(found.contains { $0.hasPrefix("24: create: true needs an API that creates repositories") }, "\(found)")
        #expect(found.count == 9, "\(found)")
    }

    @Test func forgeSettingsOfAWrittenSecondary() throws {
        let config = try load("""
            repositories:
              - name: app
                primary: https://example.com/app.git
                secondaries:
                  - name: hub
                    url: https://github.com/acme-mirror/app.git
                    create: true
                  - name: self-hosted
                    url: https://git.example.com/mirrors/app.git
                    forge: gitea
                    create: true
                    visibility: public
                  - name: enterprise
                    url: git@ghe.example.com:mirrors/app.git
                    forge: github
                    api: https://ghe.example.com/api/v3
            """)
        let secondaries = try #require(config.mirror(named: "app")).secondaries
        #expect(secondaries[0].forge == ForgeEndpoint(kind: .github, api: URL(string: "https://api.github.com")!) && secondaries[0].visibility == "private")
        #expect(secondaries[1].forge == ForgeEndpoint(kind: .gitea, api: URL(string: "https://git.example.com/api/v1")!) && secondaries[1].visibility == "public")
        #expect(secondaries[2].forge?.api.absoluteString == "https://ghe.example.com/api/v3")

        let found = problems("""
            repositories:
              - name: app
                primary: https://example.com/app.git
                secondaries:
                  - name: a
                    url: https://git.example.com/app.git
                    create: true
                  - name: b
                    url: https://git.example.com/b.git
                    api: https://git.example.com/api/v4
                  - name: c
                    url: https://git.example.com/c.git
                    forge: bitbucket
                  - name: d
                    url: https://git.example.com/d.git
                    forge: gitlab
                    api: http://git.example.com/api/v4
            """)
        #expect(found.contains { $0.hasPrefix("7: create: true needs an API") }, "\(found)")
        #expect(found.contains("10: api: needs forge: (github, gitlab or gitea) to say which API it is"), "\(found)")
        #expect(found.contains("13: forge must be one of github, gitlab, gitea (got 'bitbucket')"), "\(found)")
        #expect(found.contains { $0.hasPrefix("17: http:// sends the API token in clear text") }, "\(found)")
    }

    @Test func rateLimitAnswersAreReadAsEachForgeSendsThem() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        func wait(_ status: Int, _ headers: [String: String]) -> TimeInterval? {
            ForgeREST.rateLimitWait(HTTPClient.Response(status: status, headers: headers, body: Data()), now: now)
        }
        #expect(wait(429, ["retry-after": "7"]) == 7)
        #expect(wait(403, ["x-ratelimit-remaining": "0", "x-ratelimit-reset": "1800000030"]) == 31)
        #expect(wait(429, ["ratelimit-remaining": "0", "ratelimit-reset": "1800000010"]) == 11)
        #expect(wait(403, [:]) == nil)   // a refusal, not a limit
        #expect(wait(429, [:]) == 60)
        #expect(wait(200, ["retry-after": "5"]) == nil)
        let base = URL(string: "https://api.github.com/orgs/acme/repos?page=1")!
        #expect(ForgeREST.nextLink(#"<https://api.github.com/organizations/1/repos?page=2>; rel="next", <https://api.github.com/organizations/1/repos?page=4>; rel="last""#,
                                   relativeTo: base)?.absoluteString == "https://api.github.com/organizations/1/repos?page=2")
        #expect(ForgeREST.nextLink(#"<https://api.github.com/x?page=1>; rel="prev""#, relativeTo: base) == nil)
    }
}
