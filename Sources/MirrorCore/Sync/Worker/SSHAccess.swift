import Foundation
import Synchronization

/// `doctor`, for an SSH remote: log in the way a push does (OpenSSH, the configured key and options)
/// without asking for anything, and where the key's login is a forced command (gitolite, Gitea's and
/// GitLab's shells), ask that command `info` — so that nothing is run that could change the server:
/// gitolite creates a wild repository on any git command of a user allowed to create it.
enum SSHAccessProbe {
    /// Where an SSH URL (`ssh://user@host:port/path` or `user@host:path`) logs in.
    struct Target: Equatable {
        var user: String?
        var host: String
        var port: Int?
        var path: String

        init?(_ url: String) {
            if url.hasPrefix("ssh://") {
                guard let parsed = URLComponents(string: url), let host = parsed.host, !host.isEmpty else { return nil }
                (user, self.host, port, path) = (parsed.user, host, parsed.port, parsed.path)
            } else {
                guard let colon = url.firstIndex(of: ":") else { return nil }
                let authority = url[..<colon]
                let at = authority.lastIndex(of: "@")
                user = at.map { String(authority[..<$0]) }
                host = String(at.map { authority[authority.index(after: $0)...] } ?? authority)
                port = nil
                path = String(url[url.index(after: colon)...])
            }
        }

        /// gitolite's name for the repository: the path without its leading "/" and ".git".
        var repositoryName: String {
            var name = path.hasPrefix("/") ? String(path.dropFirst()) : path
            if name.hasSuffix(".git") { name.removeLast(4) }
            return name
        }
    }

    static func probe(_ endpoint: Endpoint) throws(SyncFailure) -> SSHAccess {
        guard let target = Target(endpoint.url) else { throw SyncFailure(.config, "\(endpoint.url) is not an SSH address gitmirror can read") }
        // The same OpenSSH command line as a push, with the key from memory.
        let opened: (command: String, key: Int32)
        do { opened = try GitTransfer.openSSH(endpoint, user: target.user == nil ? endpoint.credential?.sshKey?.username : nil) } catch {
            throw error as? SyncFailure ?? SyncFailure(.internal, "\(error)")
        }
        let (ssh, key) = opened
        defer { if key >= 0 { close(key) } }
        let destination = (target.port.map { " -p \($0)" } ?? "") + " -- " + GitTransfer.quoted((target.user.map { "\($0)@" } ?? "") + target.host)

        // Log in, asking for no session: nothing runs on the server. -v shows the server's word on the key's options.
        // An OpenSSH server sends its word on the key's options right after the login; another server says nothing.
        let login = try run(["/bin/sh", "-c", ssh.replacingOccurrences(of: "ssh -F", with: "ssh -v -N -F") + destination],
                            until: "Authenticated to", settled: { $0.range(of: #"key options:[^\n]*\n"#, options: .regularExpression) != nil },
                            timeout: 30)
        guard login.reached else {
            var said = login.errors.filter { !$0.hasPrefix("debug") && !$0.hasPrefix("OpenSSH_") && !$0.isEmpty }.suffix(6).joined(separator: " | ")
            // The key the server showed, for a person to compare with the fingerprint its owner gives.
            if let shown = login.errors.first(where: { $0.hasPrefix("debug1: Server host key: ") }) {
                said += " (the server presents \(shown.dropFirst("debug1: Server host key: ".count)))"
            }
            var evidence = Classification.Evidence(message: said.isEmpty ? "ssh exited with status \(login.status)" : said)
            evidence.ssh = true
            throw Classification.failure(Classification.transfer(evidence), detail: evidence.message, target: endpoint.url,
                                         unexplained: "logging in to \(endpoint.url) with OpenSSH failed: \(evidence.message)")
        }
        let forced = login.errors.contains { $0.contains("Remote:") && $0.contains("key options:") && $0.contains(" command") }
        guard forced else { return SSHAccess(forcedCommand: false, gitolite: nil) }
        let info = try run(["/bin/sh", "-c", ssh + destination + " info"], until: nil, settled: { _ in false }, timeout: 30)
        return SSHAccess(forcedCommand: true, gitolite: GitoliteAccess.parse(info: info.output, repository: target.repositoryName))
    }

    struct Ran {
        var reached: Bool
        var status: Int32
        var output: String
        var errors: [String]
    }

    /// Runs `command` to its end or its `timeout`; once its stderr says `marker`, it is stopped when
    /// what it said is `settled`, or two seconds later.
    static func run(_ command: [String], until marker: String?, settled: @escaping @Sendable (String) -> Bool,
                    timeout: TimeInterval) throws(SyncFailure) -> Ran {
        let spawned = Result { () throws -> (ChildProcess, Int32, Int32) in
            try ChildProcess.withSpawnLock {
                let input = try ChildProcess.makePipe(), output = try ChildProcess.makePipe(), errors = try ChildProcess.makePipe()
                defer { close(input.read); close(input.write); close(output.write); close(errors.write) }
                let child = try ChildProcess(command, environment: GitTransfer.environment(), stdin: input.read, stdout: output.write,
                                             stderr: errors.write, newProcessGroup: true)
                return (child, output.read, errors.read)
            }
        }
        guard case .success(let (child, output, errors)) = spawned else {
            throw SyncFailure(.internal, "cannot start OpenSSH: \(String(describing: spawned))")
        }
        defer { close(output); close(errors) }
        let said = Mutex("")
        let reached = Mutex(false)
        let timer = DispatchWorkItem { child.signalGroup(SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        defer { timer.cancel() }
        let outputDone = DispatchSemaphore(value: 0)
        let outputText = Mutex(Data())
        Thread.detachNewThread {
            let data = ChildProcess.readAll(output)
            outputText.withLock { $0 = data }
            outputDone.signal()
        }
        _ = ChildProcess.readAll(errors) { chunk in
            let text = said.withLock { $0 += String(decoding: chunk, as: UTF8.self); return $0 }
            guard let marker, text.contains(marker) else { return }
            let first = reached.withLock { was in defer { was = true }; return !was }
            if settled(text) {
                child.signalGroup(SIGTERM)
            } else if first {
                DispatchQueue.global().asyncAfter(deadline: .now() + 2) { child.signalGroup(SIGTERM) }
            }
        }
        outputDone.wait()
        let status = child.wait()
        let errorLines = said.withLock { $0 }.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        return Ran(reached: reached.withLock { $0 }, status: status, output: String(decoding: outputText.withLock { $0 }, as: UTF8.self),
                   errors: errorLines)
    }
}

extension GitoliteAccess {
    /// gitolite's `info`: "hello USER, this is … running gitolite3 …", then a line per repository the
    /// user may reach (` R W<TAB>name`) and per pattern it may create (`  C<TAB>pattern`).
    static func parse(info: String, repository: String) -> GitoliteAccess? {
        let lines = info.split(whereSeparator: \.isNewline)
        guard let greeting = lines.first, greeting.hasPrefix("hello "), greeting.contains("running gitolite") else { return nil }
        var access = GitoliteAccess(repository: repository, exists: false, read: false, write: false, createPattern: nil)
        for line in lines.dropFirst() {
            guard let tab = line.firstIndex(of: "\t") else { continue }
            let rights = line[..<tab], name = String(line[line.index(after: tab)...]).trimmingCharacters(in: .whitespaces)
            if rights.contains("C") {
                // A wild pattern: gitolite anchors it (^…$).
                if access.createPattern == nil, repository.wholeMatch(of: (try? Regex(name)) ?? Regex(verbatim: name)) != nil {
                    access.createPattern = name
                }
            } else if name == repository {
                access.exists = true
                access.read = rights.contains("R")
                access.write = rights.contains("W")
            }
        }
        return access
    }
}
