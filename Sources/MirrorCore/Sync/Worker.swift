import Foundation
import Git

/// The worker side: one libgit2 network operation in a short-lived process, so
/// that a hung server or a looping libgit2 can be killed without harm.
/// Reads one `WorkerRequest` from stdin, writes `WorkerEvent` lines to stdout.
public enum Worker {
    /// Serves jobs, one JSON line each on stdin, until stdin ends or no job came for
    /// `idleExit` seconds; answers each with progress lines and one result or failure line.
    public static func main(supervisor: Int32? = nil, idleExit: TimeInterval? = nil) -> Int32 {
        // Ctrl-C reaches the whole process group; the supervisor decides what stops
        // (and records it), so a worker leaves SIGINT to it.
        signal(SIGINT, SIG_IGN)
        // A server that hangs up mid-push must be an error from send(), not a dead worker.
        signal(SIGPIPE, SIG_IGN)
        watchParent(supervisor ?? getppid())
        let decoder = JSONDecoder()
        // stdin is read here without stdio's buffer: several jobs may arrive in one read, and each
        // must start before the next wait for input.
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            guard let newline = pending.firstIndex(of: 0x0A) else {
                if let idleExit, !awaitInput(idleExit: idleExit) { return 0 }
                let count = read(STDIN_FILENO, &chunk, chunk.count)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 {
                    // End of input: the supervisor lets this worker go; jobs under way still answer.
                    concurrent.waitUntilIdle()
                    return 0
                }
                pending.append(contentsOf: chunk[0..<count])
                continue
            }
            let line = Data(pending[..<newline])
            pending.removeSubrange(...newline)
            if line.isEmpty { continue }
            let request: WorkerRequest
            do {
                request = try decoder.decode(WorkerRequest.self, from: line)
            } catch {
                emit(WorkerEvent(failure: SyncFailure(.internal, "the worker could not read its job: \(error)")))
                return 1
            }
            if let id = request.id {
                concurrent.start { answer(run(request), id: id) }
            } else {
                answer(run(request), id: nil)
            }
        }
    }

    static func answer(_ outcome: Result<WorkerResult, SyncFailure>, id: Int?) {
        switch outcome {
        case .success(let result): emit(WorkerEvent(id: id, result: result))
        case .failure(let failure): emit(WorkerEvent(id: id, failure: failure))
        }
    }

    /// The jobs with an id, each on a thread of its own.
    static let concurrent = ConcurrentJobs()

    /// Whether a job (or the end of input) arrives before the worker has been idle for `idleExit`:
    /// jobs still running on their threads keep the worker busy.
    static func awaitInput(idleExit: TimeInterval) -> Bool {
        var idleSince = Date()
        while true {
            if inputArrives(within: min(idleExit, 1)) { return true }
            if concurrent.running > 0 {
                idleSince = Date()
            } else if Date().timeIntervalSince(idleSince) >= idleExit {
                return false
            }
        }
    }

    /// Whether stdin has something to read (a job, or its end) within `seconds`.
    static func inputArrives(within seconds: TimeInterval) -> Bool {
        var descriptor = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&descriptor, 1, Int32(seconds * 1000))
            if ready < 0 && errno == EINTR { continue }
            return ready != 0
        }
    }

    /// A worker whose supervisor died (even by SIGKILL) must not hang on alone:
    /// it exits as soon as it is re-parented — or at once, when the supervisor
    /// was already gone by the time the worker started.
    static func watchParent(_ parent: Int32) {
        if getppid() != parent { leave() }
        Thread.detachNewThread {
            while getppid() == parent { usleep(250_000) }
            leave()
        }
    }

    /// Exits, taking along what this worker started (a git push on a hung server would stay forever):
    /// a worker leads its own process group, so the group is exactly that.
    static func leave() -> Never {
        if getpgrp() == getpid() {
            signal(SIGTERM, SIG_IGN)
            kill(0, SIGTERM)
        }
        _exit(3)
    }

    /// One line per event; the lock keeps the lines of jobs running side by side whole.
    static func emit(_ event: WorkerEvent) {
        guard var data = try? JSONEncoder().encode(event) else { return }
        data.append(0x0A)
        emitLock.withLock { FileHandle.standardOutput.write(data) }
    }

    private static let emitLock = NSLock()

    /// Hooks for one connection: the credential is answered once per connection.
    static func makeHooks(_ request: WorkerRequest, caBundle: String?) -> TransferHooks {
        let hooks = TransferHooks()
        if request.url.lowercased().hasPrefix("http://") || request.url.lowercased().hasPrefix("https://") {
            let service = [.push, .pushAccess].contains(request.operation) ? "git-receive-pack" : "git-upload-pack"
            hooks.credentialRelease = { username, password in
                OriginGuard.release(url: request.url, service: service, username: username, password: password, caBundle: caBundle)
            }
        }
        if let wire = request.credential, wire.kind == .aws {
            guard let keys = wire.aws else { return hooks }
            // Signed at the moment the server asks, never ahead of time.
            hooks.credentialProvider = {
                let signed = SigV4.codeCommitCredentials(host: wire.signingHost ?? "", path: wire.signingPath ?? "",
                                                         region: wire.region ?? "", credentials: keys)
                return .userPassword(username: signed.username, password: signed.password)
            }
        } else {
            hooks.credential = request.credential.flatMap(credential)
        }
        hooks.certificateCheck = { certificate in verdict(certificate, request) }
        var lastProgress = Date.distantPast
        hooks.progress = { line in
            // The supervisor's stall clock needs a heartbeat, not every callback.
            let now = Date()
            if now.timeIntervalSince(lastProgress) >= 0.5 {
                lastProgress = now
                emit(WorkerEvent(id: request.id, progress: line))
            }
        }
        return hooks
    }

    static func run(_ request: WorkerRequest) -> Result<WorkerResult, SyncFailure> {
        Libgit2.initialize()
        var bundle: URL?
        defer { if let caFile = request.caFile, bundle != nil { bundles.release(caFile) } }
        var hooks = makeHooks(request, caBundle: nil)
        do {
            if let caFile = request.caFile {
                bundle = try bundles.acquire(caFile)
                hooks = makeHooks(request, caBundle: bundle?.path)
            }
            var result = WorkerResult()
            if [.list, .pushAccess, .fetch, .push].contains(request.operation), let missing = missingLocalRepository(request.url) {
                return .failure(missing)
            }
            switch request.operation {
            case .list:
                (result.heads, result.defaultBranch) = try listRefs(request, hooks: hooks)
            case .pushAccess:
                let remote = try Remote(url: request.url, hooks: hooks)
                result.heads = try remote.listHeads(.push)
                remote.disconnect()
            case .fetch:
                let repository = try Repository.openOrCreateBare(at: request.cachePath ?? "")
                result.seeded = try fetchRefs(request, into: repository, hooks: hooks)
                result.bytes = hooks.receivedBytes
            case .push:
                result = try push(request, hooks: hooks, caBundle: bundle?.path)
                if result.serverMessages.isEmpty { result.serverMessages = hooks.serverMessages }
                // The final listing is a connection of its own, with hooks of its own.
                hooks = makeHooks(request, caBundle: bundle?.path)
                let verifier = try Remote(url: request.url, hooks: hooks)
                result.heads = try verifier.listHeads(.fetch)
            case .ancestry:
                result.answers = try answer(request.ancestry ?? [], cachePath: request.cachePath ?? "", progress: hooks.progress)
            case .backup:
                result.missing = try writeBackups(request.backups ?? [], cachePath: request.cachePath ?? "")
            case .verify:
                (result.verified, result.damage) = try verify(cachePath: request.cachePath ?? "", announceFrom: request.announceFrom)
            case .lfsScan:
                hooks.progress("scanning the pushed history for LFS pointers")
                result.lfsPointers = try Repository.openBare(at: request.cachePath ?? "")
                    .lfsPointers(reachableFrom: request.lfsTips ?? [], excluding: request.lfsKnown ?? [])
            }
            if result.serverMessages.isEmpty { result.serverMessages = hooks.serverMessages }
            return .success(result)
        } catch let error as GitError {
            return .failure(classify(error, hooks: hooks, request: request))
        } catch let failure as SyncFailure {
            return .failure(failure)
        } catch {
            return .failure(SyncFailure(.internal, "\(error)"))
        }
    }

    /// A fetch into the empty cache whose pack also streams to the empty secondaries it reaches, as it
    /// arrives (one pack for many; PackSeed.swift). A secondary's trouble never fails the fetch.
    static func fetch(_ remote: Remote, into repository: Repository, seeding targets: [SeedTarget], request: WorkerRequest) throws -> [SeedOutcome] {
        let started = Date()
        let throttle = NSLock()
        var lastLine: [String: Date] = [:]
        let seeder = PackSeeder(targets: targets, stall: request.seedStall ?? 60) { name, line in
            // The supervisor routes these to the secondary's own line; one each half second is plenty.
            let now = Date()
            let due = throttle.withLock {
                if let last = lastLine[name], now.timeIntervalSince(last) < 0.5 { return false }
                lastLine[name] = now
                return true
            }
            if due { emit(WorkerEvent(progress: "\(seedPrefix)\(name)] \(line)")) }
        }
        seeder.open()
        if seeder.isEmpty {
            try remote.fetch(refspecs: request.refspecs ?? [])
            return seeder.finish()
        }
        try repository.teePacks(PackTee { bytes in seeder.feed(bytes) })
        do {
            try remote.fetch(refspecs: request.refspecs ?? []) { heads in seeder.begin(heads) }
        } catch {
            seeder.abandon("the fetch from the primary failed, so the pack was not sent whole")
            throw error
        }
        let deadline = request.seedDeadline.map { started.addingTimeInterval($0) }
        return seeder.finish(deadline: deadline)
    }

    /// Progress lines about a seeded secondary: `[seed NAME] text`.
    public static let seedPrefix = "[seed "

    /// Push with a lease: refs that moved on the server since planning are left alone and
    /// reported; the rest are sent by the transfer the request names.
    static func push(_ request: WorkerRequest, hooks: TransferHooks, caBundle: String?) throws -> WorkerResult {
        let sent = try transfer(for: request, hooks: hooks, caBundle: caBundle).send(request.updates ?? [], from: request.cachePath ?? "")
        var result = WorkerResult()
        result.outcomes = sent.outcomes
        result.serverMessages = sent.serverMessages
        result.bytes = sent.bytes
        return result
    }

    /// git's transfer unless the request asks for libgit2's or git cannot carry it. A local path
    /// always goes through git: libgit2 would write its refs directly, skipping the target's hooks
    /// and receive.deny* (git's receive-pack is the server there, as it is for `git push /path`).
    static func transfer(for request: WorkerRequest, hooks: TransferHooks, caBundle: String?) -> any PackTransfer {
        let git = GitTransfer(request: request, hooks: hooks, caBundle: caBundle)
        if isLocalPath(request.url) { return git }
        if request.transfer == .libgit2 || !GitTransfer.handles(request) { return Libgit2Transfer(request: request, hooks: hooks) }
        return git
    }

    static func isLocalPath(_ url: String) -> Bool { url.hasPrefix("/") }

    /// A local path that is not a repository: libgit2 would call it an unsupported URL protocol.
    static func missingLocalRepository(_ url: String) -> SyncFailure? {
        guard isLocalPath(url) else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url, isDirectory: &isDirectory), isDirectory.boolValue else {
            return SyncFailure(.notFound, "the local repository \(url) does not exist; create it (git init --bare \(url)) or correct the path")
        }
        let bare = FileManager.default.fileExists(atPath: url + "/HEAD") && FileManager.default.fileExists(atPath: url + "/objects")
        let worktree = FileManager.default.fileExists(atPath: url + "/.git")
        if !bare && !worktree {
            return SyncFailure(.notFound, "\(url) exists but is not a git repository; create one there (git init --bare) or correct the path")
        }
        return nil
    }

    /// Ancestry on the cache, question by question, with a heartbeat after each: a question that
    /// never finishes is a damaged object, and the supervisor's stall limit catches it.
    static func answer(_ questions: [AncestryQuestion], cachePath: String, progress: (String) -> Void) throws -> [AncestryAnswer] {
        let cache = try Repository.openBare(at: cachePath)
        var answers: [AncestryAnswer] = []
        for (index, question) in questions.enumerated() {
            let present = try cache.contains(question.old)
            let fastForward = try present && cache.isDescendant(question.new, of: question.old)
            answers.append(AncestryAnswer(present: present, fastForward: fastForward))
            progress("checked ancestry \(index + 1)/\(questions.count)")
        }
        return answers
    }

    /// Writes each backup ref whose object the cache holds; returns the refs whose object it lacks.
    static func writeBackups(_ backups: [BackupRef], cachePath: String) throws -> [String] {
        let cache = try Repository.openBare(at: cachePath)
        var missing: [String] = []
        for backup in backups {
            guard try cache.contains(backup.id) else {
                missing.append(backup.ref)
                continue
            }
            if try cache.reference(named: backup.ref) != backup.id {
                try cache.setReference(backup.ref, to: backup.id, message: backup.message)
            }
        }
        return missing
    }

    /// Reads every object. Progress every half second carries the count; from `announceFrom` on,
    /// every object is named before it is read, so that one that hangs is known by its id.
    static func verify(cachePath: String, announceFrom: Int?) throws -> (Int, String?) {
        let cache = try Repository.openBare(at: cachePath)
        for (ref, id) in try cache.references(matching: "refs/*").sorted(by: { $0.key < $1.key }) where try !cache.contains(id) {
            return (0, "\(ref) points at object \(id.hex), which the cache does not have (objects are missing)")
        }
        let ids = try cache.objectIDs().sorted()
        var last = Date()
        for (index, id) in ids.enumerated() {
            if let announceFrom, index >= announceFrom {
                emit(WorkerEvent(progress: "reading object \(id.hex)"))
            } else if Date().timeIntervalSince(last) >= 0.5 {
                last = Date()
                emit(WorkerEvent(progress: "verified \(index)/\(ids.count) objects"))
            }
            do {
                try cache.readObject(id)
            } catch {
                return (index, "object \(id.hex) cannot be read: \(error.message)")
            }
        }
        return (ids.count, nil)
    }

    /// The static credentials (AWS keys are signed by a provider instead).
    static func credential(_ wire: WireCredential) -> Credential? {
        switch wire.kind {
        case .password:
            return .userPassword(username: wire.username ?? "git", password: wire.password ?? "")
        case .sshKey:
            return .sshKey(username: wire.username, privateKey: wire.privateKey ?? "", passphrase: wire.passphrase)
        case .aws:
            return nil
        }
    }

    /// SSH host keys are decided here, against known_hosts, so that a refusal
    /// can name the host and the key's fingerprint. TLS is libgit2's to judge.
    static func verdict(_ certificate: HostCertificate, _ request: WorkerRequest) -> CertificateVerdict {
        guard case let .sshHostKey(host, sha256, rawKey, keyType) = certificate else { return .passthrough }
        let name = request.knownHostsName ?? host
        let fingerprint = KnownHosts.fingerprint(sha256: sha256)
        let file = request.knownHostsFile ?? (NSHomeDirectory() as NSString).appendingPathComponent(".ssh/known_hosts")
        let type = keyType ?? "unknown type"
        guard let contents = try? String(contentsOfFile: file, encoding: .utf8) else {
            return .reject("unknown SSH host key for \(name) (\(type) \(fingerprint)): \(file) cannot be read; add the host's key with ssh-keyscan")
        }
        switch KnownHosts(contents: contents).check(host: name, key: rawKey) {
        case .trusted:
            return .accept
        case .unknownHost:
            return .reject("unknown SSH host key for \(name) (\(type) \(fingerprint)): it is not in \(file); verify the fingerprint, then add it with ssh-keyscan")
        case .mismatch:
            return .reject("the SSH host key of \(name) does not match \(file): the server presents \(type) \(fingerprint). It may have been replaced, or someone may be intercepting the connection; do not proceed until the new key is confirmed")
        case .revoked:
            return .reject("the SSH host key of \(name) (\(fingerprint)) is marked @revoked in \(file)")
        }
    }

    /// The trust stores of the jobs under way (a worker serves one `ca_file`, see WorkerPool).
    static let bundles = CertificateBundles()

    /// libgit2 (mbedTLS) replaces its CA store with the file it is given, so the
    /// extra CA is appended to the system bundle in a temporary file.
    static func certificateBundle(adding caFile: String) throws -> URL {
        var pem = (try? String(contentsOfFile: "/etc/ssl/certs/ca-certificates.crt", encoding: .utf8)) ?? ""
        guard let extra = try? String(contentsOfFile: caFile, encoding: .utf8) else {
            throw SyncFailure(.config, "ca_file \(caFile) cannot be read")
        }
        pem += "\n" + extra + "\n"
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gitmirror-ca-\(getpid())-\(UUID().uuidString).pem")
        try pem.write(to: url, atomically: false, encoding: .utf8)
        return url
    }

    /// The remote's refs and HEAD's branch; a local primary libgit2 cannot read is listed by git (LocalPrimary).
    static func listRefs(_ request: WorkerRequest, hooks: TransferHooks) throws -> (heads: [RemoteHead], head: String?) {
        do {
            let remote = try Remote(url: request.url, hooks: hooks)
            try remote.connect(.fetch)
            let heads = try remote.advertisedHeads()
            let head = try? remote.defaultBranch()
            remote.disconnect()
            return (heads, head)
        } catch {
            // libgit2 reads a local primary's refs itself and stops at one it cannot hold; git lists them all.
            guard LocalPrimary.isLocal(request.url), let listed = try? LocalPrimary.list(request.url) else { throw error }
            return listed
        }
    }

    /// Fetches the request's refspecs into the cache (seeding secondaries as the pack arrives, when asked);
    /// a local primary libgit2 cannot read is fetched by git, and its secondaries are then pushed as usual.
    static func fetchRefs(_ request: WorkerRequest, into repository: Repository, hooks: TransferHooks) throws -> [SeedOutcome]? {
        do {
            let remote = try Remote(url: request.url, in: repository, hooks: hooks)
            if let seeds = request.seeds, !seeds.isEmpty {
                return try fetch(remote, into: repository, seeding: seeds, request: request)
            }
            try remote.fetch(refspecs: request.refspecs ?? [])
            return nil
        } catch {
            guard LocalPrimary.isLocal(request.url),
                  (try? LocalPrimary.fetch(request.url, into: request.cachePath ?? "", refspecs: request.refspecs ?? [])) != nil else { throw error }
            return nil
        }
    }

    static func classify(_ error: GitError, hooks: TransferHooks, request: WorkerRequest) -> SyncFailure {
        switch hooks.failure {
        case .credentialsRefused(let message)?: return SyncFailure(.auth, "\(message) (check the token, password or key and its permissions)")
        case .noCredentials(let message)?: return SyncFailure(.auth, message)
        case .hostKey(let message)?: return SyncFailure(.hostKey, message)
        case .certificate(let message)?: return SyncFailure(.tls, message)
        case .negotiation(let message)?: return SyncFailure(.rejected, message)
        case .redirected(let message)?: return SyncFailure(.config, message)
        case .originUnconfirmed(let message)?: return SyncFailure(.network, message)
        case nil: break
        }
        let text = error.message
        let remoteSaid = hooks.serverMessages.suffix(3).joined(separator: " | ")
        let detail = remoteSaid.isEmpty ? text : "\(text) (server said: \(remoteSaid))"
        var evidence = Classification.Evidence(message: text, serverSaid: remoteSaid)
        evidence.credentialRefused = error.isAuth
        evidence.ssh = error.isSSH
        evidence.certificate = error.isCertificate
        evidence.network = error.isNetwork
        evidence.nonFastForward = error.isNonFastForward
        evidence.objectDatabase = error.isObjectDatabase
        evidence.cachePath = request.cachePath
        switch Classification.transfer(evidence) {
        case .redirected?:
            return SyncFailure(.config, "the server redirected elsewhere (\(text)); gitmirror sends credentials and pushes only to the configured scheme, host and port. Put the final URL in mirrors.yaml")
        case .sshKeyLocked?:
            return SyncFailure(.auth, "the SSH key could not be unlocked (\(text)): check ssh_key_passphrase_env or ssh_key_passphrase_file, or that ssh_key is an unencrypted ed25519 key")
        case .credentialRefused?:
            return SyncFailure(.auth, "authentication failed: \(detail)")
        case .hostKeyUntrusted?:
            return SyncFailure(.hostKey, "the SSH host key is not trusted by known_hosts: \(detail)")
        case let local? where [.diskFull, .cacheUnwritable, .cacheDamaged].contains(local):
            return Self.localFailure(local, text, cachePath: request.cachePath)
        case .tooLarge?:
            return SyncFailure(.tooLarge, "the server refused the size of the push: \(detail); push the history in smaller steps, or raise the server's limit (receive.maxInputSize, the host's push size limit)")
        case .readOnly?:
            return SyncFailure(.readOnly, "the server serves this repository read-only: \(detail)")
        case .notFound?:
            return SyncFailure(.notFound, "the repository does not exist or is not visible to these credentials: \(detail)")
        case .tls?:
            return SyncFailure(.tls, "TLS verification failed: \(detail)")
        case .nonFastForward?:
            return SyncFailure(.rejected, "not a fast-forward: \(detail)")
        case .network?:
            return SyncFailure(.network, "\(detail)")
        default:
            return SyncFailure(.internal, "\(error.function) failed: \(detail)")
        }
    }

    /// Faults of this machine rather than of the server: the cache's permissions, a full disk, damaged objects.
    static func localFault(_ text: String, cachePath: String?, objectDatabase: Bool = false) -> SyncFailure? {
        var evidence = Classification.Evidence(message: text)
        evidence.cachePath = cachePath
        evidence.objectDatabase = objectDatabase
        return Classification.localFault(evidence).map { localFailure($0, text, cachePath: cachePath) }
    }

    /// The words for a local fault: where, and what to do.
    static func localFailure(_ cause: Classification.Cause, _ text: String, cachePath: String?) -> SyncFailure {
        let place = cachePath ?? "the cache"
        switch cause {
        case .diskFull:
            return SyncFailure(.internal, "no space left on the device holding \(place) (state_dir): free space there, then sync again")
        case .cacheUnwritable:
            return SyncFailure(.config, "\(CacheAccess.describe(place)); run gitmirror as the user who owns state_dir, or give that user access to it")
        default:
            // A suspicion only: the supervisor verifies the cache before it calls it damaged.
            return SyncFailure(.internal, "reading the cache \(place) failed: \(text)", cacheDamage: text)
        }
    }

}

/// Jobs running side by side in one worker, each on a thread of its own.
final class ConcurrentJobs: @unchecked Sendable {
    private let condition = NSCondition()
    private var count = 0

    var running: Int { condition.withLock { count } }

    func start(_ job: @escaping @Sendable () -> Void) {
        condition.withLock { count += 1 }
        // On a reused thread with libgit2's stack (BlockingThreads).
        BlockingThreads.shared.run { [self] in
            job()
            condition.withLock {
                count -= 1
                condition.broadcast()
            }
        }
    }

    func waitUntilIdle() {
        condition.withLock {
            while count > 0 { condition.wait() }
        }
    }
}

/// The temporary trust stores (system CAs plus `ca_file`) of the jobs under way: made and given to
/// libgit2 by the first job that needs one, shared by the jobs that run beside it, removed by the last.
/// libgit2's store is process-wide, which is why a worker never serves two `ca_file`s.
final class CertificateBundles: @unchecked Sendable {
    private let lock = NSLock()
    private var bundles: [String: (url: URL, users: Int)] = [:]

    func acquire(_ caFile: String) throws -> URL {
        try lock.withLock {
            if let held = bundles[caFile] {
                bundles[caFile] = (held.url, held.users + 1)
                return held.url
            }
            let url = try Worker.certificateBundle(adding: caFile)
            do {
                try Libgit2.setCertificateFile(url.path)
            } catch {
                try? FileManager.default.removeItem(at: url)
                throw error
            }
            bundles[caFile] = (url, 1)
            return url
        }
    }

    func release(_ caFile: String) {
        lock.withLock {
            guard let held = bundles[caFile] else { return }
            if held.users > 1 {
                bundles[caFile] = (held.url, held.users - 1)
            } else {
                bundles[caFile] = nil
                try? FileManager.default.removeItem(at: held.url)
            }
        }
    }
}
