import Foundation
import MirrorCore

/// The usual stage of a sync test: a primary served by git daemon, secondaries
/// served by the same daemon, and a mirrors.yaml naming them.
public final class Scenario: @unchecked Sendable {
    public let sandbox: Sandbox
    public let served: URL
    public let daemon: GitDaemon
    public let primary: BareRepository
    public private(set) var config: URL

    public init(_ name: String) throws {
        sandbox = try Sandbox(name)
        served = try sandbox.directory("served")
        primary = try BareRepository.create(at: served.appendingPathComponent("primary.git"))
        daemon = try GitDaemon(sandbox: sandbox, root: served)
        config = sandbox.path("mirrors.yaml")
    }

    /// A primary with one commit, and one empty secondary named `secondary` (mirrors.yaml is the test's to write).
    public static func withSecondary(_ name: String, named secondary: String) throws -> (scenario: Scenario, secondary: BareRepository) {
        let scenario = try Scenario(name)
        try scenario.primary.commit("first")
        return (scenario, try scenario.secondary(secondary))
    }

    /// The most usual stage: a primary with one commit, and one secondary `backup` in mirrors.yaml (with
    /// `options`, further lines of its item, indented by two: `"  force: true"`), synced once when `synced`.
    public static func withBackup(_ name: String, options: String = "", synced: Bool = false) throws -> (scenario: Scenario, backup: BareRepository) {
        let (scenario, backup) = try withSecondary(name, named: "backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))" + (options.isEmpty ? "" : "\n" + options))
        if synced {
            let output = try scenario.gitmirror("sync")
            guard output.status == 0 else { throw TestError("the first sync of \(name) failed: \(output)") }
        }
        return (scenario, backup)
    }

    /// A primary with `main` and `branch`, mirrored once to the secondary `backup` (with `options`, further lines
    /// of its item); the branch's tip.
    public static func withMirroredBranch(_ name: String, _ branch: String, options: String = "") throws
        -> (scenario: Scenario, backup: BareRepository, tip: String) {
        let scenario = try Scenario(name)
        try scenario.primary.commit("first")
        let tip = try scenario.primary.commit(branch, on: branch)
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))" + options)
        let output = try scenario.gitmirror("sync")
        guard output.status == 0 else { throw TestError("the first sync of \(name) failed: \(output)") }
        return (scenario, backup, tip)
    }

    /// An empty bare repository served by the daemon.
    public func secondary(_ name: String) throws -> BareRepository {
        try BareRepository.create(at: served.appendingPathComponent("\(name).git"))
    }

    public func url(_ repository: BareRepository) -> String { daemon.url(repository.url.lastPathComponent) }

    /// Writes mirrors.yaml with one repository `app`; `secondaries` is the YAML of the list's items.
    /// A daemon of these tests starts its first runs at once (`start_spread: 0s`) unless `daemon` says otherwise:
    /// a test waits for an event, never for the jitter a fleet needs.
    public func configure(secondaries: String, credentials: String = "", defaults: String = "", daemon: String = "") throws {
        var text = "state_dir: state\n"
        if !daemon.isEmpty {
            text += "daemon:\n" + indent(daemon, by: 2) + "\n"
            if !daemon.contains("start_spread:") { text += "  start_spread: 0s\n" }
        }
        if !defaults.isEmpty { text += "defaults:\n" + indent(defaults, by: 2) + "\n" }
        if !credentials.isEmpty { text += "credentials:\n" + indent(credentials, by: 2) + "\n" }
        text += """
            repositories:
              - name: app
                primary: \(url(primary))
                secondaries:

            """
        text += indent(secondaries, by: 6) + "\n"
        config = try sandbox.write("mirrors.yaml", text)
    }

    /// mirrors.yaml with one secondary `web` at `url` and its credential `web`: user `mirror`, `password` in a
    /// file of the sandbox, and the CA file `ca` trusted when given.
    public func configureWeb(_ url: String, password: String, trusting ca: URL? = nil) throws {
        let secret = try sandbox.write("secrets/password", password)
        try configure(secondaries: "- name: web\n  url: \(url)\n  credentials: web",
                      credentials: "web:\n  username: mirror\n  password_file: \(secret.path)" + (ca.map { "\n  ca_file: \($0.path)" } ?? ""))
    }

    /// mirrors.yaml with one secondary `ssh` at `url` and its credential `key`: the SSH key `key`, trusting `knownHosts`.
    public func configureSSH(_ url: String, key: URL, knownHosts: URL) throws {
        try configure(secondaries: "- name: ssh\n  url: \(url)\n  credentials: key",
                      credentials: "key:\n  ssh_key: \(key.path)\n  known_hosts: \(knownHosts.path)")
    }

    /// One repository of a multi-repository mirrors.yaml: its primary's URL and its secondaries as
    /// flow-style YAML items (`{name: backup, url: "…"}`).
    public struct Repository {
        public var name: String
        public var primary: String
        public var secondaries: [String]

        public init(_ name: String, primary: String, secondaries: [String]) {
            self.name = name
            self.primary = primary
            self.secondaries = secondaries
        }
    }

    /// Writes mirrors.yaml with several repositories (daemon settings as in `configure(secondaries:)`).
    public func configure(repositories: [Repository], daemon: String = "") throws {
        var text = "state_dir: state\n"
        if !daemon.isEmpty {
            text += "daemon:\n" + indent(daemon, by: 2) + "\n"
            if !daemon.contains("start_spread:") { text += "  start_spread: 0s\n" }
        }
        text += "repositories:\n"
        for repository in repositories {
            text += "  - name: \(repository.name)\n    primary: \(repository.primary)\n    secondaries:\n"
            text += repository.secondaries.map { "      - \($0)\n" }.joined()
        }
        config = try sandbox.write("mirrors.yaml", text)
    }

    func indent(_ text: String, by count: Int) -> String {
        let pad = String(repeating: " ", count: count)
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "" : pad + $0 }.joined(separator: "\n")
    }

    /// Starts `gitmirror daemon` on this scenario's mirrors.yaml and waits until it is ready.
    public func startDaemon(environment: [String: String] = [:], arguments: [String] = []) throws -> DaemonProcess {
        let daemon = try DaemonProcess(sandbox: sandbox, config: config, environment: environment, arguments: arguments)
        try daemon.waitUntilReady()
        return daemon
    }

    @discardableResult
    public func gitmirror(_ arguments: String..., environment: [String: String] = [:]) throws -> Shell.Output {
        try Gitmirror.run(arguments, config: config, environment: environment)
    }

    public func store() throws -> StateStore { try Gitmirror.store(config) }

    public func state(_ remote: String) throws -> RemoteState? {
        try store().remoteStates().first { $0.repository == "app" && $0.remote == remote }
    }

    /// The bare cache gitmirror keeps for `app`.
    public var cache: BareRepository { BareRepository(url: sandbox.path("state/cache/app.git")) }
}
