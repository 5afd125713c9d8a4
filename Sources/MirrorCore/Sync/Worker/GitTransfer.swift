import Foundation
import Synchronization
import Git

/// The transfer that reuses the deltas the cache already stores: git's own `push`, run from the
/// cache by the worker (libgit2 1.5's packbuilder recomputes every delta it sends). For a local
/// path this is also what makes the target's receive-pack — its hooks and `receive.deny*` — decide.
///
/// What it keeps from the libgit2 transfer: every update carries its lease
/// (`--force-with-lease=ref:expected`); credentials are answered by `CredentialRelay` for the
/// configured origin only; redirects are not followed; SSH goes through OpenSSH with exactly the
/// configured key (read from memory) and known_hosts, strict; git reads no configuration but the cache's.
struct GitTransfer: PackTransfer {
    let endpoint: Endpoint
    let hooks: TransferHooks
    /// The CA bundle the worker built (the system's plus `ca_file`), if any.
    let caBundle: String?

    /// Whether git can carry this push: everything but an SSH key locked with a passphrase
    /// (OpenSSH in batch mode cannot be given one; libgit2 can).
    static func handles(_ endpoint: Endpoint) -> Bool { endpoint.credential?.isLockedKey != true }

    /// git reads no configuration but the repositories' own, and never prompts.
    static func environment() -> [String: String] {
        let parent = ProcessInfo.processInfo.environment
        var environment = ["PATH": parent["PATH"] ?? "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C",
                           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0"]
        environment["HOME"] = parent["HOME"] ?? NSHomeDirectory()
        return environment
    }

    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    static func scheme(of url: String) -> String {
        if url.hasPrefix("/") { return "file" }
        if let range = url.range(of: "://") { return String(url[..<range.lowerBound]).lowercased() }
        return "ssh"
    }

    /// `-c` settings that confine git to what the configuration says.
    static func settings(url: String, helper: String?, caBundle: String?, sshCommand: String) -> [String] {
        var settings = ["credential.helper=", "credential.useHttpPath=false", "http.followRedirects=false",
                        "protocol.allow=never", "protocol.\(scheme(of: url)).allow=always", "core.askPass=",
                        "core.sshCommand=\(sshCommand)", "push.useBitmaps=true", "advice.pushUpdateRejected=false"]
        if let helper { settings.append("credential.helper=\(helper)") }
        if let caBundle { settings.append("http.sslCAInfo=\(caBundle)") }
        return settings.flatMap { ["-c", $0] }
    }

    /// The OpenSSH command line every SSH connection of a worker uses (a push, a seed, doctor's login),
    /// for `endpoint`, with its key held in memory: an anonymous file OpenSSH reads through this
    /// process's descriptor `key` (-1 without a key), which the caller closes when ssh is done.
    /// `user`: the login to set (nil where the address names its own).
    static func openSSH(_ endpoint: Endpoint, user: String?) throws -> (command: String, key: Int32) {
        let key = try endpoint.credential?.sshKey.map { try memoryFile(named: "gitmirror-ssh-key", contents: $0.privateKey) } ?? -1
        let knownHosts = endpoint.knownHostsFile ?? (NSHomeDirectory() as NSString).appendingPathComponent(".ssh/known_hosts")
        return (sshCommand(keyPath: key >= 0 ? "/proc/\(getpid())/fd/\(key)" : nil, knownHosts: knownHosts, user: user), key)
    }

    /// OpenSSH with exactly the configured key and known_hosts: no agent, no ~/.ssh/config, no prompt.
    static func sshCommand(keyPath: String?, knownHosts: String, user: String?) -> String {
        var words = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                     "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "PasswordAuthentication=no",
                     "-o", "KbdInteractiveAuthentication=no", "-o", "UserKnownHostsFile=\(quoted(knownHosts))",
                     "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=30",
                     "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
        if let user { words += ["-o", "User=\(quoted(user))"] }
        words += keyPath.map { ["-i", quoted($0)] } ?? ["-o", "IdentityFile=none"]
        return words.joined(separator: " ")
    }

    /// The command line: every update carries its lease (`--force-with-lease=ref:expected`, empty
    /// for "must not exist"), so a ref that moved since planning is refused by git, not overwritten.
    /// `byID`: each update's source is its object id (pushed from a repository without refs, PushScratch).
    /// `planted`: the plain updates (`PushScratch.planted`) are refs of the scratch repository, pushed
    /// with one pattern (git matches a pattern through a hash of the remote's refs, an explicit refspec
    /// against every other: 20,000 new refs took minutes).
    static func arguments(cache: String, target: String, updates: [WireUpdate], settings: [String] = [], byID: Bool = false,
                          planted: Set<String> = []) -> [String] {
        var arguments = ["git", "--git-dir=\(cache)"] + settings + ["push", "--porcelain", "--progress", "--no-verify"]
        // git matches each lease against each update (minutes for thousands): a push of many leases
        // only what git would otherwise not protect — a forced update, a deletion. A create or a
        // fast-forward it refuses by itself once the server's ref is no longer what was planned.
        for update in updates where !byID || update.force || update.new == nil {
            arguments.append("--force-with-lease=\(update.ref):\(update.expectedOld?.hex ?? "")")
        }
        arguments.append(target)
        // Deletions first: a branch renamed into a folder (`a` → `a/b`) frees its name before the new ref takes it.
        arguments += updates.filter { $0.new == nil }.map { ":\($0.ref)" }
        if !planted.isEmpty { arguments.append("\(PushScratch.namespace)*:refs/*") }
        for update in updates where !planted.contains(update.ref) {
            guard let new = update.new else { continue }
            arguments.append((update.force ? "+" : "") + "\(byID ? new.hex : update.source ?? update.ref):\(update.ref)")
        }
        return arguments
    }

    /// What one git run left: its porcelain (stdout), its stderr lines, its exit status, and what the credential relay saw.
    struct Run {
        var porcelain: String
        var lines: [String]
        var status: Int32
        var relay: [CredentialRelay.Event]
        var bytes: Int
    }

    /// Runs git as every push runs it: the configured key from memory through OpenSSH with exactly its
    /// options, credentials from the relay for the configured origin only, no configuration but the
    /// repository's. `command` gets the `-c` settings and returns the whole command line.
    func runGit(preparing: String = "git is preparing the push", _ command: ([String]) -> [String]) throws -> Run {
        let target = endpoint.url
        let (ssh, key) = try Self.openSSH(endpoint, user: Self.scheme(of: target) == "ssh" && !Self.hasUser(target)
                                          ? endpoint.credential?.sshKey?.username : nil)
        defer { if key >= 0 { close(key) } }
        let helper = "!" + Self.quoted(ChildProcess.ownExecutable.path) + " __credential \(CredentialRelay.descriptor)"

        // The hooks stay this push's: the relay's thread asks them while the push waits for git.
        let lent = Lent(hooks)
        let answer: @Sendable () -> (username: String, password: String)? = {
            let hooks = lent.value
            switch hooks.credentialProvider?() ?? hooks.credential {
            case .userPassword(let username, let password)?: return (username, password)
            default: return nil
            }
        }
        let (child, output, errors, relay) = try ChildProcess.withSpawnLock {
            let stdin = try ChildProcess.makePipe(), stdout = try ChildProcess.makePipe(), stderr = try ChildProcess.makePipe()
            let relay = try CredentialRelay(url: target, answer: answer)
            let childEnd = relay.childEnd
            defer {
                close(stdin.read)
                close(stdin.write)
                close(stdout.write)
                close(stderr.write)
                close(childEnd)
            }
            let child = try ChildProcess(command(Self.settings(url: target, helper: helper, caBundle: caBundle, sshCommand: ssh)),
                                         environment: Self.environment(), stdin: stdin.read, stdout: stdout.write, stderr: stderr.write,
                                         inherited: [(childEnd, CredentialRelay.descriptor)])
            return (child, stdout.read, stderr.read, relay)
        }
        relay.serve()
        let say = Lent(hooks.progress)
        let progress = GitProgress(report: { say.value($0) })
        // Before the server hears anything, git matches every ref against its lease, locally: on a busy
        // machine a push of thousands of refs spends minutes so, silent. While git's processes use CPU,
        // that is work, not a server that stopped answering (one that did leaves them waiting, idle).
        let working = LocalWork.heartbeat { progress.say(preparing) }
        defer { working?.stop() }
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            progress.read(errors)
            done.signal()
        }
        let porcelain = String(decoding: ChildProcess.readAll(output), as: UTF8.self)
        close(output)
        done.wait()
        let status = child.wait()
        relay.finish()
        return Run(porcelain: porcelain, lines: progress.lines, status: status, relay: relay.events, bytes: progress.bytes)
    }

    func send(_ updates: [WireUpdate], from cache: String) throws -> TransferResult {
        guard !updates.isEmpty else { return TransferResult() }
        let target = endpoint.url
        // git matches every refspec against every ref of the repository it pushes from: thousands of
        // updates from a cache of thousands of refs is minutes of that. Many are pushed by object id from
        // a repository without refs that borrows the cache's objects.
        let scratch = updates.count > PushScratch.threshold ? try PushScratch(cache: cache) : nil
        defer { scratch?.remove() }
        let planted = try scratch?.plant(updates) ?? []
        let run = try runGit(preparing: "git is preparing the push (\(updates.count) refs)") { settings in
            Self.arguments(cache: scratch?.path ?? cache, target: target, updates: updates, settings: settings, byID: scratch != nil,
                           planted: planted)
        }
        let (porcelain, lines, status) = (run.porcelain, run.lines, run.status)
        let outcomes = Self.parse(porcelain: porcelain, updates: updates)
        guard !outcomes.isEmpty else {
            throw Self.failure(lines: lines, status: status, target: target, relay: run.relay, cache: cache)
        }
        // The server could not unpack what git sent: git copies stored objects as they are, so a damaged
        // cache shows here first. A suspicion only: the supervisor verifies the cache before repairing it.
        if let unpack = outcomes.first(where: { !$0.accepted && Self.isUnpackFailure($0.message ?? "") }) {
            let said = lines.filter { $0.lowercased().contains("error") || $0.lowercased().contains("fatal") }.suffix(4).joined(separator: " | ")
            let detail = said.isEmpty ? (unpack.message ?? "unpacker error") : said
            // Unless the server said why, and the why is its size limit (receive.maxInputSize): nothing of the cache's.
            if Classification.rejection(detail).errorClass == .tooLarge {
                throw Classification.failure(.tooLarge, detail: detail, target: target, unexplained: detail)
            }
            throw SyncFailure(.rejected, "the server could not unpack the pack sent from the cache (\(detail))", cacheDamage: CacheDamage(detail))
        }
        let messages = lines.compactMap { line -> String? in
            guard line.hasPrefix("remote: ") else { return nil }
            let text = String(line.dropFirst("remote: ".count)).trimmingCharacters(in: .whitespaces)
            return text.isEmpty || TransferHooks.isProgress(text) ? nil : text
        }
        return TransferResult(outcomes: outcomes, serverMessages: Array(messages.prefix(200)), bytes: run.bytes)
    }

    /// `doctor`: connect to the remote's receive-pack exactly as a push would (the same program, user,
    /// key, options and environment) and push nothing (`--dry-run`, deleting a ref no one has), from
    /// the empty repository `scratch`.
    func probe(from scratch: String) throws {
        let target = endpoint.url
        let run = try runGit { settings in
            ["git", "--git-dir=\(scratch)"] + settings + ["push", "--dry-run", "--porcelain", target, ":refs/gitmirror/doctor-probe"]
        }
        guard run.status == 0 else { throw Self.failure(lines: run.lines, status: run.status, target: target, relay: run.relay, cache: scratch) }
    }

    static func isUnpackFailure(_ message: String) -> Bool {
        let lower = message.lowercased()
        return lower.contains("unpacker error") || lower.contains("index-pack abnormal exit") || lower.contains("unpack-objects abnormal exit")
    }

    static func hasUser(_ url: String) -> Bool {
        let authority = url.range(of: "://").map { String(url[$0.upperBound...]) } ?? url
        let end = authority.firstIndex(where: { $0 == "/" || $0 == ":" }) ?? authority.endIndex
        return authority[..<end].contains("@")
    }

    /// An anonymous in-memory file (memfd), readable only by this user, holding `contents`.
    static func memoryFile(named name: String, contents: String) throws -> Int32 {
        let descriptor = gitmirror_memfd_create(name, 1 /* MFD_CLOEXEC */)
        guard descriptor >= 0 else { throw SyncFailure(.internal, "memfd_create: \(String(cString: strerror(errno)))") }
        _ = fchmod(descriptor, 0o600)
        var text = contents
        if !text.hasSuffix("\n") { text += "\n" }
        guard writeAll(descriptor, Array(text.utf8)) else {
            close(descriptor)
            throw SyncFailure(.internal, "cannot hold the SSH key in memory: \(String(cString: strerror(errno)))")
        }
        return descriptor
    }

    /// Why git gave no verdict for any ref, from what it printed: the class a person can act on.
    static func failure(lines: [String], status: Int32, target: String, relay: [CredentialRelay.Event], cache: String) -> SyncFailure {
        for event in relay {
            if case .otherOrigin(let origin) = event {
                return SyncFailure(.config, "the server redirected to \(origin), another origin than the configured one; gitmirror sends credentials and pushes only to the configured scheme, host and port. Put the final URL in mirrors.yaml")
            }
        }
        let said = lines.filter { line in
            let text = line.hasPrefix("remote: ") ? String(line.dropFirst("remote: ".count)).trimmingCharacters(in: .whitespaces) : line
            return !text.isEmpty && !TransferHooks.isProgress(text)
        }.suffix(6).joined(separator: " | ")
        var evidence = Classification.Evidence(message: said)
        evidence.credentialRefused = relay.contains(.refused)
        evidence.cachePath = cache
        // git's stderr names its own target (a local fault excepted): the words say which remote.
        return Classification.failure(Classification.transfer(evidence), detail: said, target: target, cachePath: cache,
                                      unexplained: "git push to \(target) exited with status \(status) without a verdict per ref: \(said)")
    }

    /// `--porcelain` lines: FLAG \t FROM:TO \t SUMMARY [(REASON)]; `!` is a refusal.
    static func parse(porcelain: String, updates: [WireUpdate]) -> [PushOutcome] {
        var verdicts: [String: PushOutcome] = [:]
        let forcedRefs = Set(updates.filter(\.force).map(\.ref))
        for line in porcelain.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count >= 3, let flag = fields[0].first, let colon = fields[1].lastIndex(of: ":") else { continue }
            let ref = String(fields[1][fields[1].index(after: colon)...])
            let summary = String(fields[2])
            if flag == "!" {
                var reason = summary
                if let open = summary.firstIndex(of: "("), summary.hasSuffix(")") {
                    reason = String(summary[summary.index(after: open)..<summary.index(before: summary.endIndex)])
                }
                // A refusal of a plain update as no fast-forward says the same as a lease: the ref moved.
                let moved = summary.contains("stale info")
                    || (!forcedRefs.contains(ref) && (summary.contains("fetch first") || summary.contains("non-fast-forward")))
                verdicts[ref] = moved ? .moved(ref) : PushOutcome(ref: ref, accepted: false, message: reason)
            } else {
                verdicts[ref] = PushOutcome(ref: ref, accepted: true)
            }
        }
        return updates.compactMap { verdicts[$0.ref] }
    }
}

/// git's stderr, line by line: progress becomes a short line for the supervisor (its stall clock and
/// what people see), everything else is kept for the error message.
final class GitProgress: Sendable {
    private struct Said {
        var collected: [String] = []
        var written = 0
    }
    private let said = Mutex(Said())
    private let report: @Sendable (String) -> Void

    init(report: @escaping @Sendable (String) -> Void) { self.report = report }

    var lines: [String] { said.withLock { $0.collected } }

    /// A line of the worker's own, between git's (never at the same time: the hooks take one at a time).
    func say(_ line: String) { said.withLock { _ in report(line) } }
    /// Bytes written, as git's "Writing objects" line last said.
    var bytes: Int { said.withLock { $0.written } }

    func read(_ descriptor: Int32) {
        var pending = Data()
        _ = ChildProcess.readAll(descriptor) { chunk in
            pending.append(chunk)
            while let end = pending.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
                let line = String(decoding: pending[pending.startIndex..<end], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                pending.removeSubrange(pending.startIndex...end)
                guard !line.isEmpty else { continue }
                let step = TransferStep(gitLine: line)
                said.withLock { said in
                    report(step?.description ?? line)
                    if let bytes = step?.bytes { said.written = max(said.written, bytes) }
                    if step == nil, !TransferHooks.isProgress(line), said.collected.count < 500 { said.collected.append(line) }
                }
            }
        }
        close(descriptor)
    }
}

/// glibc's memfd_create (2.27+), which Swift's Glibc module does not export.
@_silgen_name("memfd_create")
private func gitmirror_memfd_create(_ name: UnsafePointer<CChar>, _ flags: UInt32) -> Int32
