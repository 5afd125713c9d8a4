import Foundation
import MirrorCore
import Testing
import TestSupport

/// `change_check: api` (#12): a repository whose primary's forge says nothing changed is not listed,
/// against each forge's loopback API, whose answers follow the served repository's pushes.
@Suite(.onTestThreads) struct ChangeCheckTests {
    static let token = "forge-change-check-canary-7f3a9c"

    /// Moves every file under the repository's refs (and packed-refs) `seconds` into the past: its last
    /// push, as the API reports it, was that long ago.
    func age(_ repository: BareRepository, by seconds: TimeInterval) throws {
        let then = Date().addingTimeInterval(-seconds)
        let manager = FileManager.default
        var files = [repository.url.appendingPathComponent("packed-refs")].filter { manager.fileExists(atPath: $0.path) }
        if let walker = manager.enumerator(at: repository.url.appendingPathComponent("refs"), includingPropertiesForKeys: nil) {
            files += walker.compactMap { $0 as? URL }
        }
        for file in files { try manager.setAttributes([.modificationDate: then], ofItemAtPath: file.path) }
    }

    func listings(_ scenario: Scenario, of path: String) -> Int {
        scenario.daemon.logText.components(separatedBy: "\n").filter { $0.contains("Request upload-pack for '/\(path)'") }.count
    }

    @Test(arguments: [ForgeKind.github, .gitlab, .gitea])
    func anUnchangedPrimaryIsNotListedUntilItChangesOrVerifyIntervalPasses(kind: ForgeKind) throws {
        // Given a primary acme/widget served by git daemon and known to the forge's API, with change_check: api
        let scenario = try Scenario("change-check-\(kind.rawValue)")
        let primary = try BareRepository.create(at: scenario.served.appendingPathComponent("acme/widget.git"))
        try primary.commit("first")
        try age(primary, by: 60)
        let backup = try scenario.secondary("backup")
        let api = try ForgeAPIServer(sandbox: scenario.sandbox, kind: kind, token: Self.token, accounts: ["acme": "Organization"],
                                     gitRoot: scenario.served)
        try api.add("acme/widget")
        let config = try scenario.sandbox.write("mirrors.yaml", """
            state_dir: state
            credentials:
              forge-api:
                token_env: FORGE_TOKEN
            repositories:
              - name: widget
                primary: {url: "\(scenario.daemon.url("acme/widget.git"))", forge: \(kind.rawValue), api: "\(api.api)", allow_insecure: true,
                          credentials: forge-api, change_check: api, verify_interval: 1h}
                secondaries:
                  - {name: backup, url: "\(scenario.url(backup))"}
            """)
        let environment = ["FORGE_TOKEN": Self.token]
        func sync() throws -> Shell.Output { try Gitmirror.run(["sync"], config: config, environment: environment) }

        // When it is synced: every remote is listed, and the backup is filled
        let first = try sync()
        #expect(first.status == 0, "\(first)")
        #expect(try backup.refs() == primary.refs())
        let listedFirst = listings(scenario, of: "acme/widget.git")
        #expect(listedFirst == 2, "the fetch's listing and the fetch itself: \(scenario.daemon.logText)")

        // When it is synced again with nothing pushed
        let second = try sync()

        // Then nothing is listed: the forge (asked with the last answer's ETag) said nothing changed
        #expect(second.status == 0, "\(second)")
        #expect(second.stdout.contains("unchanged (API)"), "\(second.stdout)")
        #expect(listings(scenario, of: "acme/widget.git") == listedFirst)
        let run = try #require(try Gitmirror.store(config).runs(repository: "widget").first)
        #expect(run.result == .ok && run.summary?.contains("unchanged per the \(kind.displayName) API") == true, "\(run)")

        // When a commit is pushed to the primary (a minute after the last)
        let pushed = try primary.commit("second")

        // Then the next sync lists and mirrors it
        let third = try sync()
        #expect(third.status == 0, "\(third)")
        #expect(try backup.refs()["refs/heads/main"] == pushed)
        #expect(listings(scenario, of: "acme/widget.git") > listedFirst)

        // and, the push being of the last few seconds, the one after lists again rather than trust an
        // answer a second push within the same second would not change
        let listedThird = listings(scenario, of: "acme/widget.git")
        #expect(try sync().status == 0)
        #expect(listings(scenario, of: "acme/widget.git") > listedThird)

        // When the push is older, one more run keeps the answer and the next lists nothing
        try age(primary, by: 60)
        #expect(try sync().status == 0)
        let settled = listings(scenario, of: "acme/widget.git")
        #expect(try sync().stdout.contains("unchanged (API)"))
        #expect(listings(scenario, of: "acme/widget.git") == settled)

        // When verify_interval has passed since every remote was last listed
        _ = try Shell.run(["python3", "-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("UPDATE change_check SET listedAt = '2020-01-01 00:00:00.000'")
            db.commit()
            """, config.deletingLastPathComponent().appendingPathComponent("state/gitmirror.sqlite").path])

        // Then the next sync lists again, though the forge says nothing changed
        let verified = try sync()
        #expect(!verified.stdout.contains("unchanged (API)"), "\(verified.stdout)")
        #expect(listings(scenario, of: "acme/widget.git") > settled)

        // and the token never reaches the output or the state
        for output in [first, second, third, verified] { #expect(!(output.stdout + output.stderr).contains(Self.token)) }
        #expect(scenario.sandbox.files(under: "state", containing: [Self.token]).hits.isEmpty)
    }

    @Test func changeCheckOnAPrimaryWithoutAForgeIsRefusedWhereItIsWritten() throws {
        // Given change_check: api on a primary that is on no forge gitmirror knows, and a bad mode
        let sandbox = try Sandbox("change-check-validate")
        let config = try sandbox.write("mirrors.yaml", """
            state_dir: state
            repositories:
              - name: plain
                primary: {url: "git://git.example.org/plain.git", change_check: api}
                secondaries:
                  - {name: backup, url: "/srv/backup/plain.git"}
              - name: typo
                primary: {url: "https://github.com/acme/typo.git", change_check: etag, verify_interval: 10s}
                secondaries:
                  - {name: backup, url: "/srv/backup/typo.git"}
            """)

        // When it is validated
        let output = try Gitmirror.run(["validate"], config: config)

        // Then each problem is named with its line, and nothing else is said to be wrong
        #expect(output.status != 0)
        #expect(output.combined.contains("mirrors.yaml:4") && output.combined.contains("change_check: api asks the primary's forge"), "\(output.combined)")
        #expect(output.combined.contains("change_check must be none or api (got 'etag')"), "\(output.combined)")
        #expect(output.combined.contains("verify_interval"), "\(output.combined)")
    }
}
