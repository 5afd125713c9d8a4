import Foundation
import MirrorCore
import Testing
import TestSupport

/// What an operator deploys and reads is true (issue #9).
@Suite(.onTestThreads) struct OperatorTests {
    @Test func validateCatchesWhatTheDaemonWouldDieOn() throws {
        // Given a file with one of each mistake that used to pass validate (or be misreported)
        let sandbox = try Sandbox("validate-edges")
        let config = try sandbox.write("mirrors.yaml", """
            state_dir: state
            daemon:
              listen: 0.0.0.0:99999
              hooks:
                github_secret_env: GITMIRROR_TEST_UNSET_HOOK_SECRET
              notify:
                - url: http://alerts.example.com/gitmirror
                - url: http://127.0.0.1:9000/local-relay
            defaults:
              stall_timeout: 5
            repositories:
              - name: app
                secondaries:
                  - name: one
                    url: git://127.0.0.1:9001/a.git
                    refs: ["heads/*"]
              - name: web
                primary: https://git.example.com/web.git
                secondaries:
                  - {name: other-port, url: "https://git.example.com:8443/web.git"}
                  - {name: daemon, url: "git://git.example.com:9419/web.git"}

            """)

        // When validate reads it
        let output = try Gitmirror.run(["validate"], config: config)

        // Then every problem is reported at its line, with what to do, and the rest is accepted
        #expect(output.status == 2, "\(output)")
        let lines = output.stderr.split(separator: "\n").map(String.init)
        func reported(_ line: Int, _ text: String) -> Bool { lines.contains { $0.contains("mirrors.yaml:\(line):") && $0.contains(text) } }
        #expect(reported(3, "listen port 99999 is outside 1–65535"), "\(output.stderr)")
        #expect(reported(5, "GITMIRROR_TEST_UNSET_HOOK_SECRET, which is not set"), "\(output.stderr)")
        #expect(reported(7, "plain http to another machine"), "\(output.stderr)")
        #expect(reported(10, "stall_timeout: 5 has no unit; write 5s, 5m or 5h"), "\(output.stderr)")
        #expect(reported(12, "repository 'app' needs a 'primary:' URL"), "\(output.stderr)")
        #expect(reported(16, "did you mean refs/heads/*?"), "\(output.stderr)")
        #expect(!output.stderr.contains("refs/heads/heads"), "\(output.stderr)")
        // Another port of the primary's host is another server, not "the primary itself"
        #expect(!output.stderr.contains("web"), "\(output.stderr)")
        #expect(output.stderr.contains("6 problems in"), "\(output.stderr)")

        // And the daemon's --listen is held to the same range
        let daemon = try Gitmirror.run(["daemon", "--listen", "127.0.0.1:99999"], config: config)
        #expect(daemon.status == 64 && daemon.stderr.contains("port 99999 is outside 1–65535"), "\(daemon)")
    }

    @Test func aReadOnlyConfigurationFolderGetsAPlainErrorAndGITMIRROR_STATE_DIRIsHonoured() throws {
        // Given mirrors.yaml without state_dir in a folder only root may write (as a ConfigMap is
        // mounted in a container), and gitmirror running as an unprivileged user
        let (scenario, backup) = try Scenario.withBackup("read-only-config")
        let text = try String(contentsOf: scenario.config, encoding: .utf8).replacingOccurrences(of: "state_dir: state\n", with: "")
        let folder = try scenario.sandbox.directory("etc-gitmirror")
        let config = folder.appendingPathComponent("mirrors.yaml")
        try text.write(to: config, atomically: true, encoding: .utf8)
        let state = try scenario.sandbox.directory("var-lib-gitmirror")
        try Shell.run(["chown", "nobody", state.path])
        try Shell.run(["chmod", "-R", "go+rX,go-w", scenario.sandbox.root.path])
        try Shell.run(["chmod", "0755", state.path])
        let asNobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", Gitmirror.executableForAnyUser.path, "sync", "--config", config.path]

        // When it syncs
        let refused = try Shell.run(asNobody, check: false)

        // Then it says which folder it cannot write, whose it is, who it runs as and what to set
        #expect(refused.status != 0, "\(refused)")
        let said = refused.stdout + refused.stderr
        #expect(said.contains("state_dir \(folder.path)/.gitmirror is not writable"), "\(said)")
        #expect(said.contains("root") && said.contains("nobody") && said.contains("GITMIRROR_STATE_DIR"), "\(said)")
        #expect(!said.contains("NSCocoaErrorDomain"), "\(said)")

        // And with GITMIRROR_STATE_DIR (as the container image sets it) the same sync works, its state there
        let env = ["env", "GITMIRROR_STATE_DIR=\(state.path)"]
        let synced = try Shell.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + env
                                   + [Gitmirror.executableForAnyUser.path, "sync", "--config", config.path], check: false)
        #expect(synced.status == 0, "\(synced)")
        #expect(FileManager.default.fileExists(atPath: state.appendingPathComponent("gitmirror.sqlite").path))
        #expect(try backup.refs() == scenario.primary.refs())
    }

    @Test func statusExitsOneWhenARemoteIsOutOfStepAndHistoryKnowsItsRemotesAndShortNames() throws {
        // Given a repository synced to one good secondary and one that does not exist
        let scenario = try Scenario("status-exit")
        try scenario.primary.commit("first")
        try scenario.primary.tag("v1.0", message: "release")
        let good = try scenario.secondary("good")
        try scenario.configure(secondaries: """
            - name: good
              url: \(scenario.url(good))
            - name: gone
              url: \(scenario.daemon.url("missing.git"))
            """)
        #expect(try scenario.gitmirror("sync").status == 1)

        // Then status, as a table and as JSON, exits 1 like sync
        #expect(try scenario.gitmirror("status").status == 1)
        #expect(try scenario.gitmirror("status", "--json").status == 1)

        // And history refuses a remote the repository does not have, naming those it has (exit 2)
        let unknown = try scenario.gitmirror("history", "app", "--remote", "nope")
        #expect(unknown.status == 2, "\(unknown)")
        #expect(unknown.stderr.contains("no remote 'nope'") && unknown.stderr.contains("primary, good, gone, cache"), "\(unknown)")
        #expect(try scenario.gitmirror("history", "app", "--remote", "cache").status == 0)

        // And finds refs by their short names, as git resolves them
        let main = try scenario.gitmirror("history", "app", "--remote", "good", "--ref", "main")
        #expect(main.status == 0 && main.stdout.contains("refs/heads/main") && !main.stdout.contains("refs/tags/"), "\(main)")
        let tag = try scenario.gitmirror("history", "app", "--ref", "v1.0")
        #expect(tag.stdout.contains("refs/tags/v1.0"), "\(tag)")

        // And once the missing secondary is removed and all is in step, status exits 0
        try scenario.configure(secondaries: "- name: good\n  url: \(scenario.url(good))")
        #expect(try scenario.gitmirror("status").status == 0)
    }
}
