import Foundation
import MirrorCore

/// A real OpenSSH server on loopback with an ed25519 host key, accepting one
/// ed25519 user key for the current user, serving repositories by absolute path.
public final class SSHServer: Server, @unchecked Sendable {
    public let host: String
    public let port: Int
    public let user: String
    public let userKey: URL
    public let knownHosts: URL
    /// The keys sshd accepts (read at every login: a test may rewrite it, as GitoliteServer does).
    public let authorizedKeys: URL
    public let hostKeyFingerprint: String
    public let log: URL
    private let process: ChildProcess

    /// A `credentials:` entry `name` (flow style, one line) with this server's user key and known hosts.
    public func credential(_ name: String) -> String {
        "\(name): {ssh_key: \(userKey.path), known_hosts: \(knownHosts.path)}"
    }

    public init(sandbox: Sandbox, host: String = "127.0.0.1", port: Int? = nil) throws {
        self.host = host
        self.port = try port ?? Network.freePort(host: host)
        let directory = try sandbox.directory("sshd-\(self.port)")
        user = String(cString: getpwuid(getuid()).pointee.pw_name)
        let hostKey = directory.appendingPathComponent("ssh_host_ed25519_key")
        userKey = directory.appendingPathComponent("id_ed25519")
        try Shell.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test host", "-f", hostKey.path])
        try Shell.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gitmirror test", "-f", userKey.path])
        let authorized = directory.appendingPathComponent("authorized_keys")
        authorizedKeys = authorized
        try FileManager.default.copyItem(at: userKey.appendingPathExtension("pub"), to: authorized)
        let hostPublic = try String(contentsOf: hostKey.appendingPathExtension("pub"), encoding: .utf8).split(separator: " ")
        let name = self.port == 22 ? host : "[\(host)]:\(self.port)"
        knownHosts = directory.appendingPathComponent("known_hosts")
        try "\(name) \(hostPublic[0]) \(hostPublic[1])\n".write(to: knownHosts, atomically: true, encoding: .utf8)
        hostKeyFingerprint = try Shell.run(["ssh-keygen", "-l", "-E", "sha256", "-f", hostKey.appendingPathExtension("pub").path]).stdout
            .split(separator: " ")[1].description
        let config = directory.appendingPathComponent("sshd_config")
        try """
            Port \(self.port)
            ListenAddress \(host)
            HostKey \(hostKey.path)
            PidFile \(directory.path)/sshd.pid
            AuthorizedKeysFile \(authorized.path)
            StrictModes no
            UsePAM no
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PubkeyAuthentication yes
            PermitRootLogin prohibit-password
            AllowUsers \(user)
            LogLevel DEBUG1
            """.write(to: config, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        log = directory.appendingPathComponent("sshd.log")
        process = try Shell.start(["/usr/sbin/sshd", "-D", "-e", "-f", config.path], log: log)
        sandbox.keep(self)
        try Network.waitForPort(host: host, port: self.port, process: process, log: log)
    }

    public func url(_ path: URL) -> String { "ssh://\(user)@\(host):\(port)\(path.path)" }
    public func scpURL(_ path: URL) -> String { "\(user)@\(host):\(path.path)" }

    public func stop() { terminate(process) }
}
