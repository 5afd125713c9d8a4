import Foundation
import MirrorCore
import Testing
import TestSupport

/// A hostile or broken forge API behind `discover:` (the loopback GitHub API serving answers an
/// attacker chose), against real git servers: it cannot pick where gitmirror pushes, what it
/// publishes, where the token goes, how much memory it takes, or what reaches the terminal.
@Suite(.onTestThreads) struct HostileForgeTests {
    typealias Stage = DiscoveryTests.Stage

    /// The stage's organisation mirrored to local bare repositories under mirrors/ by `{path}`.
    func writeLocalMirrors(_ stage: Stage, extra: String = "") throws {
        _ = try stage.sandbox.write("mirrors.yaml", """
            state_dir: state
            credentials:
              source:
                token_env: SOURCE_TOKEN
                ca_file: \(stage.git.authority.certificate.path)
            discover:
              - github: acme
                api: \(stage.source.api)
                credentials: source
                \(extra)
                secondaries:
                  - name: backup
                    url: "\(stage.sandbox.path("mirrors").path)/{path}.git"
            """)
    }

    /// Changes what the API says of one repository (its state entry: `answer` fields replace the API's own).
    func edit(_ stage: Stage, _ path: String, _ change: @escaping (inout [String: Any]) -> Void) throws {
        try stage.source.update { state in
            var list = state["repositories"] as? [[String: Any]] ?? []
            for index in list.indices where list[index]["path"] as? String == path { change(&list[index]) }
            state["repositories"] = list
        }
    }

    func entries(_ output: Shell.Output) throws -> [String: [String: Any]] {
        let document = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any] ?? [:]
        let list = document["repositories"] as? [[String: Any]] ?? []
        return Dictionary(list.map { ($0["path"] as? String ?? "", $0) }) { first, _ in first }
    }

    @Test func aFullNameWithDotDotCannotPushOutsideTheTemplatesFolder() throws {
        // Given an API that lists acme/ok and "acme/../../victim", and a repository victim.git beside mirrors/
        let stage = try Stage("hostile-traversal")
        let ok = try stage.repository("ok")
        try stage.repository("victim")
        try edit(stage, "acme/victim") { $0["path"] = "acme/../../victim" }
        let victim = try BareRepository.create(at: stage.sandbox.path("victim.git"))
        try writeLocalMirrors(stage)
        _ = try BareRepository.create(at: stage.sandbox.path("mirrors/acme/ok.git"))

        // When discover and sync run
        let listed = try stage.gitmirror("discover", "--json")
        let sync = try stage.gitmirror("sync")

        // Then the entry is refused with its name and why, victim.git is untouched, and acme/ok is mirrored
        let entry = try entries(listed)["acme/../../victim"]
        #expect(entry?["status"] as? String == "invalid", "\(listed)")
        #expect((entry?["reason"] as? String)?.contains("would step out of its folder") == true, "\(listed)")
        #expect(sync.status == 1, "\(sync)")
        #expect(sync.stderr.contains("acme/../../victim: invalid, not mirrored"), "\(sync)")
        #expect(try victim.refs().isEmpty)
        #expect(try BareRepository(url: stage.sandbox.path("mirrors/acme/ok.git")).refs() == ok.refs())
    }

    @Test func aCloneAddressOnThisMachineIsNeverReadNorPublished() throws {
        // Given a repository on the mirror host that the forge never had, and an API entry naming it (file:// and a bare path)
        let stage = try Stage("hostile-file")
        let secret = try BareRepository.create(at: stage.sandbox.path("private/secret.git"))
        try secret.commit("confidential")
        try stage.repository("leak")
        try stage.repository("leak2")
        try edit(stage, "acme/leak") { $0["answer"] = ["clone_url": "file://\(secret.path)"] }
        try edit(stage, "acme/leak2") { $0["answer"] = ["clone_url": secret.path] }
        try writeLocalMirrors(stage)
        let leak = try BareRepository.create(at: stage.sandbox.path("mirrors/acme/leak.git"))
        let leak2 = try BareRepository.create(at: stage.sandbox.path("mirrors/acme/leak2.git"))

        // When gitmirror syncs
        let sync = try stage.gitmirror("sync")

        // Then both are refused by name, nothing of secret.git reached a secondary, and no cache holds it
        #expect(sync.status == 1, "\(sync)")
        #expect(sync.stderr.contains("acme/leak: invalid, not mirrored: the API gave the clone address 'file://"), "\(sync)")
        #expect(sync.stderr.contains("a path on this machine"), "\(sync)")
        #expect(sync.stderr.contains("acme/leak2: invalid"), "\(sync)")
        #expect(try leak.refs().isEmpty && leak2.refs().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: stage.sandbox.path("state/cache/leak.git").path))
    }

    @Test func theTokenNeverGoesToAHostTheConfigurationDoesNotName() throws {
        // Given an API entry whose clone address is on another host ("localhost", a real git server that logs every request)
        let stage = try Stage("hostile-host")
        try stage.repository("app")
        let collector = try HTTPSServer(sandbox: stage.sandbox, root: stage.primaries, user: "x-access-token", password: "not-the-token",
                                        authority: stage.git.authority)
        try edit(stage, "acme/app") { $0["answer"] = ["clone_url": "https://localhost:\(collector.port)/acme/app.git"] }
        try writeLocalMirrors(stage)

        // When gitmirror syncs
        let sync = try stage.gitmirror("sync")

        // Then the entry is refused, saying which host and how to allow it, and the other server saw nothing
        #expect(sync.status == 1, "\(sync)")
        #expect(sync.stderr.contains("on 'localhost', which is not its forge (127.0.0.1)"), "\(sync)")
        #expect(sync.stderr.contains("clone_host"), "\(sync)")
        #expect(collector.accessLogText.isEmpty, "\(collector.accessLogText)")

        // When the configuration names that host, it is the forge's clone host: the entry is taken
        try writeLocalMirrors(stage, extra: "clone_host: localhost")
        let listed = try stage.gitmirror("discover", "--json")
        #expect(try entries(listed)["acme/app"]?["status"] as? String == "mirrored", "\(listed)")
    }

    @Test func anOversizedAnswerIsCutOffAndTheSourceFailsAsTooLarge() throws {
        // Given an API whose listing page is 17 MB (one description of that size)
        let stage = try Stage("hostile-size")
        try stage.repository("app")
        try edit(stage, "acme/app") { $0["description_bytes"] = 17_000_000 }
        try writeLocalMirrors(stage)

        // When discover runs
        let listed = try stage.gitmirror("discover")

        // Then the source fails as too_large with the cap in the message, and nothing is listed
        #expect(listed.status == 1, "\(listed)")
        #expect(listed.stdout.contains("too_large") && listed.stdout.contains("larger than 16384 KiB"), "\(listed.stdout.prefix(2000))")

        // When the cap is raised in the configuration, the same answer is read
        try writeLocalMirrors(stage, extra: "max_answer_size: 32MiB")
        let raised = try stage.gitmirror("discover", "--json")
        #expect(try entries(raised)["acme/app"]?["status"] as? String == "mirrored", "\(raised.stderr)")
    }

    @Test func controlCharactersInNamesNeverReachTheTerminal() throws {
        // Given an API entry whose name holds an OSC sequence (it retitles a terminal), a NUL and a newline
        let stage = try Stage("hostile-escape")
        try stage.repository("app")
        let name = "x\u{1B}]0;pwned\u{07}\u{0}\nFORGED"
        try edit(stage, "acme/app") { $0["answer"] = ["full_name": "acme/\(name)", "name": name] }
        try writeLocalMirrors(stage)

        // When discover and sync print it
        let listed = try stage.gitmirror("discover")
        let sync = try stage.gitmirror("sync")

        // Then it is refused, and printed escaped: no ESC, BEL or NUL, and no line of its own
        #expect(listed.status == 1 && sync.status == 1)
        for text in [listed.stdout, listed.stderr, sync.stdout, sync.stderr] {
            #expect(!text.contains("\u{1B}") && !text.contains("\u{07}") && !text.contains("\u{0}"), "\(text)")
            #expect(!text.split(separator: "\n").contains { $0.hasPrefix("FORGED") }, "\(text)")
        }
        #expect(listed.stdout.contains("\\e]0;pwned"), "\(listed.stdout)")
    }
}
