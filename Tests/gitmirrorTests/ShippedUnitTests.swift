import Foundation
import MirrorCore
import Testing
import TestSupport

/// The systemd unit as the package ships it, run rather than read: its directives (read from the
/// unit file inside the .deb, so unit and test cannot drift) rebuilt without systemd as PID 1 —
/// SystemCallFilter= as a seccomp filter that kills on a refused call (Tests/Fixtures/seccomp_exec.c,
/// libseccomp), NoNewPrivileges=, User=/Group= with a passwd entry, UMask=, WorkingDirectory=,
/// Environment=, and the file-system view (ProtectSystem=strict, StateDirectory=, PrivateTmp=,
/// ProtectHome=, PrivateDevices=) with bubblewrap — around the packaged binary, with git and ssh
/// running as its children under the same filter.
@Suite(.onTestThreads) struct ShippedUnitTests {
    /// Where the test puts what /etc/gitmirror holds on a host: / is read-only here and has no /etc/gitmirror.
    static let configFolder = "/var/lib/gitmirror-config"
    /// Where the sandbox sees the unpacked package and the launcher (PrivateTmp hides the test's own folder).
    static let jailFolder = "/var/lib/gitmirror-jail"

    struct Jail {
        let folder: URL
        let unit: UnitFile
        let binary: URL
        let launcher: URL
        let allowList: URL
        let passwd: URL
        let group: URL
        let state: URL
        let config: URL
        let uid: UInt32
        let gid: UInt32

        init(sandbox: Sandbox, unit override: String? = nil) throws {
            folder = try sandbox.directory("jail")
            let package = try sandbox.directory("jail/package")
            try ShippedPackage.extract(into: package)
            binary = package.appendingPathComponent("usr/bin/gitmirror")
            let unitFile = package.appendingPathComponent("lib/systemd/system/gitmirror.service")
            if let override { try override.write(to: unitFile, atomically: true, encoding: .utf8) }
            unit = try UnitFile(contentsOf: unitFile)
            launcher = folder.appendingPathComponent("seccomp_exec")
            try Shell.run(["cc", "-O2", "-o", launcher.path, ShippedPackage.repository.appendingPathComponent("Tests/Fixtures/seccomp_exec.c").path, "-lseccomp"])
            allowList = folder.appendingPathComponent("allowed-syscalls")
            try (try unit.allowedSystemCalls().joined(separator: "\n") + "\n").write(to: allowList, atomically: true, encoding: .utf8)
            // The unit's user, with a passwd entry as the package's postinst makes it (OpenSSH needs one).
            let user = unit.value("User") ?? "root", groupName = unit.value("Group") ?? user
            uid = (61000...61999).map(UInt32.init).first { getpwuid($0) == nil }!
            gid = uid
            let home = unit.values("Environment").compactMap { $0.hasPrefix("HOME=") ? String($0.dropFirst(5)) : nil }.last ?? "/"
            passwd = folder.appendingPathComponent("passwd")
            group = folder.appendingPathComponent("group")
            try (try String(contentsOfFile: "/etc/passwd", encoding: .utf8) + "\(user):x:\(uid):\(gid):gitmirror:\(home):/usr/sbin/nologin\n")
                .write(to: passwd, atomically: true, encoding: .utf8)
            try (try String(contentsOfFile: "/etc/group", encoding: .utf8) + "\(groupName):x:\(gid):\n").write(to: group, atomically: true, encoding: .utf8)
            state = try sandbox.directory("jail/state")
            chown(state.path, uid, gid)
            chmod(state.path, mode_t(Int(unit.value("StateDirectoryMode") ?? "0755", radix: 8) ?? 0o755))
            config = try sandbox.directory("jail/config")
            chown(config.path, 0, gid)
            chmod(config.path, 0o750)
            // The unit's user must reach the package and the launcher.
            for path in [folder.path, package.path] { chmod(path, 0o755) }
        }

        /// A file under the configuration folder, readable by the unit's user only.
        @discardableResult
        func configure(_ name: String, _ contents: String) throws -> String {
            let file = config.appendingPathComponent(name)
            try contents.write(to: file, atomically: true, encoding: .utf8)
            chown(file.path, uid, gid)
            chmod(file.path, 0o600)
            return "\(ShippedUnitTests.configFolder)/\(name)"
        }

        /// The unit's environment: a clean one, as systemd gives, with its Environment= settings.
        var environment: [String: String] {
            var environment = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"]
            for setting in unit.values("Environment") {
                let pair = setting.split(separator: "=", maxSplits: 1).map(String.init)
                if pair.count == 2 { environment[pair[0]] = pair[1] }
            }
            return environment
        }

        /// The unit's ExecStart= arguments after the binary, with /etc/gitmirror/ where this test keeps it.
        var execStartArguments: [String] {
            (unit.value("ExecStart") ?? "").split(separator: " ").dropFirst()
                .map { $0.replacingOccurrences(of: "/etc/gitmirror/", with: "\(ShippedUnitTests.configFolder)/") }
        }

        /// The packaged binary with `arguments`, run as the unit runs its ExecStart=.
        func command(_ arguments: [String]) -> [String] {
            var command = ["bwrap", "--die-with-parent", "--unshare-pid", "--ro-bind", "/", "/", "--proc", "/proc"]   // ProtectSystem=strict; its own PIDs, so that ending it ends them all
            command += unit.value("PrivateDevices") == "yes" ? ["--dev", "/dev"] : ["--dev-bind", "/dev", "/dev"]
            if unit.value("PrivateTmp") == "yes" { command += ["--tmpfs", "/tmp", "--tmpfs", "/var/tmp"] }
            if unit.value("ProtectHome") == "yes" { command += ["--tmpfs", "/home", "--tmpfs", "/root"] }
            // What the sandbox must see of this test: the package and the launcher, the state, the configuration.
            command += ["--tmpfs", "/var/lib", "--ro-bind", folder.path, ShippedUnitTests.jailFolder, "--bind", state.path, "/var/lib/\(unit.value("StateDirectory") ?? "gitmirror")",
                        "--ro-bind", config.path, ShippedUnitTests.configFolder]
            command += ["--ro-bind", passwd.path, "/etc/passwd", "--ro-bind", group.path, "/etc/group"]
            command += ["--chdir", unit.value("WorkingDirectory") ?? "/"]
            command += ["setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--",
                        "/bin/sh", "-c", "umask \(unit.value("UMask") ?? "0022") && exec \"$@\"", "sh"]
            let inside = { (url: URL) in ShippedUnitTests.jailFolder + url.path.dropFirst(folder.path.count) }
            command += unit.value("NoNewPrivileges") == "yes" || unit.value("SystemCallFilter") != nil ? [inside(launcher), inside(allowList), "--"] : []
            return command + [inside(binary)] + arguments
        }

        func run(_ arguments: String...) throws -> Shell.Output {
            try Shell.run(command(arguments), environment: environment, check: false)
        }
    }

    @Test func theShippedUnitRunsValidateSyncToGitAndSSHAndADaemonThatSyncsOnAHook() throws {
        // Given a primary and a secondary behind git daemon, an SSH secondary, and the packaged unit's sandbox
        let (scenario, backup) = try Scenario.withSecondary("shipped-unit", named: "backup")
        let ssh = try SSHServer(sandbox: scenario.sandbox)
        let remote = try BareRepository.create(at: scenario.sandbox.path("ssh/backup.git"))
        let jail = try Jail(sandbox: scenario.sandbox)
        let key = try jail.configure("id_ed25519", try String(contentsOf: ssh.userKey, encoding: .utf8))
        let knownHosts = try jail.configure("known_hosts", try String(contentsOf: ssh.knownHosts, encoding: .utf8))
        let token = try jail.configure("sync-token", "canary-shipped-sync-token-5521\n")
        let port = try Network.freePort()
        try jail.configure("mirrors.yaml", """
            state_dir: /var/lib/gitmirror
            credentials:
              ssh:
                ssh_key: \(key)
                known_hosts: \(knownHosts)
            daemon:
              listen: 127.0.0.1:\(port)
              interval: 1h
              start_spread: 0s
              hooks:
                sync_token_file: \(token)
            repositories:
              - name: app
                primary: \(scenario.url(scenario.primary))
                secondaries:
                  - name: backup
                    url: \(scenario.url(backup))
                  - name: ssh
                    url: \(ssh.url(remote.url))
                    credentials: ssh
            """)
        let configuration = "\(Self.configFolder)/mirrors.yaml"

        // When validate and sync run under it
        let validate = try jail.run("validate", "--config", configuration)
        let sync = try jail.run("sync", "--config", configuration)

        // Then neither is killed by the filter (SIGSYS: 159), and both secondaries hold the primary's refs
        #expect(validate.status == 0, "\(validate)")
        #expect(sync.status == 0, "\(sync)")
        #expect(try backup.refs() == scenario.primary.refs())
        #expect(try remote.refs() == scenario.primary.refs())

        // When the daemon runs as ExecStart= says, and a hook arrives after a push
        let log = scenario.sandbox.path("jail-daemon.log")
        let daemon = try Shell.start(jail.command(jail.execStartArguments), log: log, environment: jail.environment)
        // (bwrap passes no signal on; killed, it takes the sandbox with it: --die-with-parent)
        defer { daemon.signal(SIGKILL); daemon.wait() }
        let url = "http://127.0.0.1:\(port)"
        let client = HTTPClient(timeout: 5)
        #expect(eventually(within: 30) { (try? client.send("GET", URL(string: url + "/readyz")!))?.status == 200 },
                "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        let head = try scenario.primary.commit("second")
        let hook = try client.send("POST", URL(string: url + "/hooks/sync/app")!, headers: ["Authorization": "Bearer canary-shipped-sync-token-5521"])

        // Then it answers /readyz, and the hook's run reaches both secondaries
        #expect(hook.status == 202, "\(hook.text)")
        #expect(eventually(within: 30) { try backup.refs()["refs/heads/main"] == head && remote.refs()["refs/heads/main"] == head },
                "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        #expect(daemon.isRunning, "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }

    @Test func theFilterThisUnitHadKilledGitmirrorAtStart() throws {
        // Given the unit as it was before it was run in a test: @resources denied (the Swift runtime calls setpriority)
        let sandbox = try Sandbox("shipped-old-filter")
        let package = try sandbox.directory("peek")
        try ShippedPackage.extract(into: package)
        let shipped = try String(contentsOf: package.appendingPathComponent("lib/systemd/system/gitmirror.service"), encoding: .utf8)
        let old = shipped.split(separator: "\n").map { $0.hasPrefix("SystemCallFilter=~") ? "SystemCallFilter=~@privileged @resources" : String($0) }
            .joined(separator: "\n")
        let jail = try Jail(sandbox: sandbox, unit: old)
        try jail.configure("mirrors.yaml", """
            repositories:
              - name: app
                primary: git://127.0.0.1:9/app.git
                secondaries:
                  - {name: backup, url: "git://127.0.0.1:9/backup.git"}
            """)

        // When the daemon starts under it as ExecStart= says (the one command that runs Swift concurrency's
        // threads, which set their priority: a sync and --version no longer do)
        let log = sandbox.path("old-filter-daemon.log")
        let daemon = try Shell.start(jail.command(jail.execStartArguments), log: log, environment: jail.environment)
        defer {
            if daemon.isRunning { daemon.signal(SIGKILL) }
            _ = daemon.wait()
        }

        // Then it is killed by SIGSYS at start
        #expect(eventually(within: 30) { !daemon.isRunning }, "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        #expect(daemon.wait() == 128 + SIGSYS, "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }
}
