import Foundation
import MirrorCore
import Testing
import TestSupport

/// What an operator deploys and reads is true (issue #9).
@Suite struct OperatorTests {
    @Test func aReadOnlyConfigurationFolderGetsAPlainErrorAndGITMIRROR_STATE_DIRIsHonoured() throws {
        // Given mirrors.yaml without state_dir in a folder only root may write (as a ConfigMap is
        // mounted in a container), and gitmirror running as an unprivileged user
        let scenario = try Scenario("read-only-config")
        try scenario.primary.commit("first")
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))")
        let text = try String(contentsOf: scenario.config, encoding: .utf8).replacingOccurrences(of: "state_dir: state\n", with: "")
        let folder = try scenario.sandbox.directory("etc-gitmirror")
        let config = folder.appendingPathComponent("mirrors.yaml")
        try text.write(to: config, atomically: true, encoding: .utf8)
        let state = try scenario.sandbox.directory("var-lib-gitmirror")
        try Shell.run(["chown", "nobody", state.path])
        try Shell.run(["chmod", "-R", "go+rX,go-w", scenario.sandbox.root.path])
        try Shell.run(["chmod", "0755", state.path])
        let asNobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", Gitmirror.executable.path, "sync", "--config", config.path]

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
                                   + [Gitmirror.executable.path, "sync", "--config", config.path], check: false)
        #expect(synced.status == 0, "\(synced)")
        #expect(FileManager.default.fileExists(atPath: state.appendingPathComponent("gitmirror.sqlite").path))
        #expect(try backup.refs() == scenario.primary.refs())
    }
}
