import Foundation
import MirrorCore

/// Debian's gitolite3 — a self-hosted git server nobody here wrote, with per-user and per-ref access
/// rules — behind a real sshd on loopback, set up the way its documentation administers a server
/// directly (a home of its own, `gitolite setup`, then gitolite.conf and keydir edited on the server
/// and compiled). sshd runs gitolite-shell for each key as its gitolite user, as gitolite's own
/// authorized_keys lines do, with HOME pointing at the test's gitolite home.
///
/// The gitolite user `mirror` logs in with `ssh.userKey`; `stranger` (key `strangerKey`) has no
/// rights anywhere. The standard rules give `mirror`:
/// - `open`: RW+ (rewinds and deletions allowed)
/// - `backup`: RW (no rewinds, no deletions: an append-only backup)
/// - `readonly`: R
/// - `guarded`: RW+, but `refs/heads/private/` denied
/// - `wild/NAME`: C (may create the repository by pushing to it), RW+ as its creator
/// - `adminonly`: nothing (only the admin may use it)
public final class GitoliteServer: Sendable {
    public let ssh: SSHServer
    public let home: URL
    public let strangerKey: URL

    public static let standardRules = """
        repo gitolite-admin
            RW+     =   admin
        repo open
            RW+     =   mirror
        repo backup
            RW      =   mirror
        repo readonly
            R       =   mirror
        repo guarded
            -       refs/heads/private/     =   mirror
            RW+     =   mirror
        repo wild/[a-z]+
            C       =   mirror
            RW+     =   CREATOR
        repo adminonly
            RW+     =   admin
        """

    public init(sandbox: Sandbox, rules: String = GitoliteServer.standardRules) throws {
        ssh = try SSHServer(sandbox: sandbox)
        let directory = try sandbox.directory("gitolite-\(ssh.port)")
        home = try sandbox.directory("gitolite-\(ssh.port)/home")
        let admin = directory.appendingPathComponent("admin")
        strangerKey = directory.appendingPathComponent("stranger")
        for key in [admin, strangerKey] {
            try Shell.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key.lastPathComponent, "-f", key.path])
        }
        var environment = Shell.gitEnvironment
        environment["HOME"] = home.path
        try Shell.run(["gitolite", "setup", "-pk", admin.appendingPathExtension("pub").path], environment: environment)
        let keydir = home.appendingPathComponent(".gitolite/keydir")
        try FileManager.default.copyItem(at: ssh.userKey.appendingPathExtension("pub"), to: keydir.appendingPathComponent("mirror.pub"))
        try FileManager.default.copyItem(at: strangerKey.appendingPathExtension("pub"), to: keydir.appendingPathComponent("stranger.pub"))
        try rules.write(to: home.appendingPathComponent(".gitolite/conf/gitolite.conf"), atomically: true, encoding: .utf8)
        try Shell.run(["gitolite", "compile"], environment: environment)
        try Shell.run(["gitolite", "trigger", "POST_COMPILE"], environment: environment)
        // One line per user, as gitolite writes them, but with this server's HOME.
        let lines = try [("mirror", ssh.userKey), ("stranger", strangerKey)].map { user, key in
            let publicKey = try String(contentsOf: key.appendingPathExtension("pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            return "command=\"HOME=\(home.path) /usr/share/gitolite3/gitolite-shell \(user)\",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty \(publicKey)"
        }
        try (lines.joined(separator: "\n") + "\n").write(to: ssh.authorizedKeys, atomically: true, encoding: .utf8)
    }

    /// The address of gitolite's repository `name` (gitolite names have no `.git` and no leading path).
    public func url(_ name: String) -> String { "ssh://\(ssh.user)@\(ssh.host):\(ssh.port)/\(name)" }

    /// The repository `name` as it lies on the server, to read what a push left.
    public func repository(_ name: String) -> BareRepository {
        BareRepository(url: home.appendingPathComponent("repositories/\(name).git"))
    }

    /// Whether gitolite holds a repository `name` (a wild repository exists only once created).
    public func exists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: home.appendingPathComponent("repositories/\(name).git/HEAD").path)
    }

    /// A `credentials:` entry `name` for the gitolite user `mirror` (or the one whose key is `key`).
    public func credential(_ name: String, key: URL? = nil) -> String {
        "\(name): {ssh_key: \((key ?? ssh.userKey).path), known_hosts: \(ssh.knownHosts.path)}"
    }
}
