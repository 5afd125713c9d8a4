import Foundation
import MirrorCore
import Testing
import TestSupport

@Suite(.onTestThreads) struct FirstSyncTests {
    @Test func firstSyncFillsEmptySecondariesOverGitSSHAndHTTPS() throws {
        // Given a primary with a branch, an annotated tag and a lightweight tag,
        // and three empty secondaries served by git daemon, sshd and nginx over HTTPS
        let sandbox = try Sandbox("first-sync")
        let served = try sandbox.directory("served")
        let primary = try BareRepository.create(at: served.appendingPathComponent("primary.git"))
        let main = try primary.commit("first")
        try primary.commit("feature work", on: "feature")
        let annotated = try primary.tag("v1.0", message: "release 1.0")
        try primary.tag("light")
        try primary.setRef("refs/pull/1/head", to: main)
        let viaGit = try BareRepository.create(at: served.appendingPathComponent("via-git.git"))
        let viaSSH = try BareRepository.create(at: served.appendingPathComponent("via-ssh.git"))
        let viaHTTPS = try BareRepository.create(at: served.appendingPathComponent("via-https.git"))
        let daemon = try GitDaemon(sandbox: sandbox, root: served)
        let ssh = try SSHServer(sandbox: sandbox)
        let https = try HTTPSServer(sandbox: sandbox, root: served, user: "mirror", password: "canary-https-password-7731")
        let tokenFile = try sandbox.write("secrets/https-token", "canary-https-password-7731\n")
        let config = try sandbox.write("mirrors.yaml", """
            state_dir: state
            credentials:
              \(ssh.credential("ssh-key"))
              \(https.credential("web", passwordFile: tokenFile))
            repositories:
              - name: app
                primary: \(daemon.url("primary.git"))
                secondaries:
                  - name: git
                    url: \(daemon.url("via-git.git"))
                  - name: ssh
                    url: \(ssh.url(viaSSH.url))
                    credentials: ssh-key
                  - name: https
                    url: \(https.url("via-https.git"))
                    credentials: web
            """)

        // When gitmirror syncs
        let output = try Gitmirror.run(["sync"], config: config)

        // Then every secondary holds the primary's branches and tags, and nothing from refs/pull
        #expect(output.status == 0, "\(output)")
        let expected = try primary.refs().filter { !$0.key.hasPrefix("refs/pull/") }
        #expect(expected["refs/tags/v1.0"] == annotated)
        for secondary in [viaGit, viaSSH, viaHTTPS] {
            #expect(try secondary.refs() == expected, "\(secondary.path)")
        }
        // And SQLite holds an ok state for every remote and a create row per ref and secondary
        let store = try Gitmirror.store(config)
        let states = try store.remoteStates()
        #expect(states.count == 4)
        #expect(states.allSatisfy { $0.state == .ok && $0.lastSuccess != nil && $0.lastErrorClass == nil })
        let history = try store.refHistory(repository: "app")
        #expect(history.filter { $0.action == .create && $0.outcome == .applied }.count == 3 * expected.count)
        // And no pack was made again for them: the empty HTTPS secondary took the primary's pack as it
        // arrived, in one receive-pack POST of git's smart protocol; the SSH one went through OpenSSH
        let pushes = https.accessLogText.split(separator: "\n").filter { $0.contains("POST /via-https.git/git-receive-pack") }
        #expect(pushes.count == 1 && pushes.allSatisfy { $0.contains("\"git/gitmirror\"") && !$0.contains("libgit2") }, "\(pushes)")
        let sshLog = (try? String(contentsOf: ssh.log, encoding: .utf8)) ?? ""
        #expect(sshLog.contains("remote software version OpenSSH"), "\(sshLog.suffix(2000))")
        // And the secret appears nowhere
        #expect(!output.combined.contains("canary-https-password-7731"))
        let sqlite = try Data(contentsOf: sandbox.path("state/gitmirror.sqlite"))
        #expect(sqlite.range(of: Data("canary-https-password-7731".utf8)) == nil)
    }
}
