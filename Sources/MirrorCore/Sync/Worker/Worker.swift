import Foundation
import Synchronization
import Git

/// The worker side: what each job does inside a worker process (WorkerProcess runs them), one libgit2
/// or git operation at a time, so that a hung server or a looping libgit2 can be killed without harm.
public enum Worker {
    /// Every job a worker runs, and how.
    static let handlers: [JobHandler] = [
        .handling(ListJob.self) { job, reporter in
            perform(job.remote, reporter: reporter) { connection in
                let (heads, head) = try listRefs(job.remote.url, hooks: connection.open())
                return Listing(heads: heads, defaultBranch: head)
            }
        },
        .handling(PushAccessJob.self) { job, reporter in
            perform(job.remote, receiving: true, reporter: reporter) { connection in
                try probePush(job, hooks: connection.open(), caBundle: connection.caBundle)
            }
        },
        .handling(SSHAccessJob.self) { job, reporter in
            perform(job.remote, reporter: reporter) { _ in try SSHAccessProbe.probe(job.remote) }
        },
        .handling(FetchJob.self) { job, reporter in
            perform(job.remote, cache: job.cache, reporter: reporter) { connection in
                let hooks = connection.open()
                let repository = try Repository.openOrCreateBare(at: job.cache)
                if let deciding = job.deciding {
                    return try listAndFetch(job, deciding: deciding, into: repository, hooks: hooks, reporter: reporter)
                }
                let seeded = try fetchRefs(job, into: repository, hooks: hooks, reporter: reporter)
                let answers = try job.questions.map { try answer($0, cachePath: job.cache, reporter: reporter) }
                return FetchJob.Result(bytes: hooks.receivedBytes, seeded: seeded, answers: answers)
            }
        },
        .handling(PushJob.self) { job, reporter in
            perform(job.remote, receiving: true, cache: job.cache, reporter: reporter) { connection in
                let hooks = connection.open()
                let sent = try transfer(for: job, hooks: hooks, caBundle: connection.caBundle).send(job.updates, from: job.cache)
                let messages = sent.serverMessages.isEmpty ? hooks.serverMessages : sent.serverMessages
                // The final listing is a connection of its own, with hooks of its own.
                let verifier = try Remote(url: job.remote.url, hooks: connection.open())
                return PushJob.Result(outcomes: sent.outcomes, bytes: sent.bytes, serverMessages: messages, heads: try verifier.listHeads(.fetch))
            }
        },
        .handling(AncestryJob.self) { job, reporter in
            perform(nil, cache: job.cache, reporter: reporter) { _ in try answer(job.questions, cachePath: job.cache, reporter: reporter) }
        },
        .handling(BackupJob.self) { job, reporter in
            perform(nil, cache: job.cache, reporter: reporter) { _ in try writeBackups(job.backups, cachePath: job.cache) }
        },
        .handling(VerifyJob.self) { job, reporter in
            perform(nil, cache: job.cache, reporter: reporter) { _ in try verify(cachePath: job.cache, announceFrom: job.announceFrom, reporter: reporter) }
        },
        .handling(MaintainJob.self) { job, reporter in
            perform(nil, cache: job.cache, reporter: reporter) { _ in try maintain(job, reporter: reporter) }
        },
        .handling(LFSScanJob.self) { job, reporter in
            perform(nil, cache: job.cache, reporter: reporter) { _ in
                reporter.note(.progress("scanning the pushed history for LFS pointers"))
                return try Repository.openBare(at: job.cache).lfsPointers(reachableFrom: job.tips, excluding: job.known)
            }
        },
    ]

    /// The hidden `__worker` command: serves jobs on stdin until it ends or none came for `idleExit` seconds.
    public static func main(supervisor: Int32? = nil, idleExit: TimeInterval? = nil) -> Int32 {
        // libgit2's setup runs while the supervisor prepares the first job, not after it came: almost
        // every job needs it. Its TLS library's parse of the system's CA file waits for an HTTPS remote.
        Libgit2.deferSystemCertificates()
        Libgit2.initialize()
        return WorkerProcess.serve(handlers, supervisor: supervisor, idleExit: idleExit)
    }

    /// The connections of one job to its remote: each opened with hooks of its own (the credential is
    /// answered once per connection); the last one's tell what failed.
    final class Connection {
        let endpoint: Endpoint?
        let receiving: Bool
        let caBundle: String?
        let reporter: JobReporter
        private(set) var latest: TransferHooks

        init(_ endpoint: Endpoint?, receiving: Bool, caBundle: String?, reporter: JobReporter) {
            self.endpoint = endpoint
            self.receiving = receiving
            self.caBundle = caBundle
            self.reporter = reporter
            latest = Worker.progressHooks(reporter)
        }

        func open() -> TransferHooks {
            latest = endpoint.map { Worker.makeHooks($0, receiving: receiving, caBundle: caBundle, reporter: reporter) } ?? Worker.progressHooks(reporter)
            return latest
        }
    }

    /// Runs one job's work with libgit2 ready and the job's trust store in place, and words its failure.
    static func perform<R>(_ endpoint: Endpoint?, receiving: Bool = false, cache: String? = nil, reporter: JobReporter,
                           _ body: (Connection) throws -> R) -> Result<R, SyncFailure> {
        Libgit2.initialize()
        if let endpoint, let missing = missingLocalRepository(endpoint.url) { return .failure(missing) }
        var bundle: URL?
        defer { if let caFile = endpoint?.caFile, bundle != nil { bundles.release(caFile) } }
        var failed = progressHooks(reporter)
        do {
            if let caFile = endpoint?.caFile { bundle = try bundles.acquire(caFile) }
            let connection = Connection(endpoint, receiving: receiving, caBundle: bundle?.path, reporter: reporter)
            defer { failed = connection.latest }
            return .success(try body(connection))
        } catch let error as GitError {
            return .failure(classify(error, hooks: failed, cachePath: cache))
        } catch let failure as SyncFailure {
            return .failure(failure)
        } catch {
            return .failure(SyncFailure(.internal, "\(error)"))
        }
    }

    /// Hooks that only report progress: the supervisor's stall clock needs a heartbeat, not every callback.
    static func progressHooks(_ reporter: JobReporter) -> TransferHooks {
        let hooks = TransferHooks()
        var lastProgress = Date.distantPast
        hooks.progress = { line in
            let now = Date()
            if now.timeIntervalSince(lastProgress) >= 0.5 {
                lastProgress = now
                reporter.note(.progress(line))
            }
        }
        return hooks
    }

    /// Hooks for one connection to `endpoint`: its credential (answered once), its host's trust.
    static func makeHooks(_ endpoint: Endpoint, receiving: Bool, caBundle: String?, reporter: JobReporter) -> TransferHooks {
        let hooks = progressHooks(reporter)
        let url = endpoint.url
        if url.lowercased().hasPrefix("http://") || url.lowercased().hasPrefix("https://") {
            let service = receiving ? "git-receive-pack" : "git-upload-pack"
            hooks.credentialRelease = { username, password in
                OriginGuard.release(url: url, service: service, username: username, password: password, caBundle: caBundle)
            }
        }
        switch endpoint.credential {
        case .aws?:
            // Signed at the moment the server asks, never ahead of time.
            hooks.credentialProvider = { endpoint.credential?.login().map { .userPassword(username: $0.username, password: $0.password) } }
        case .password?:
            hooks.credential = endpoint.credential?.login().map { .userPassword(username: $0.username, password: $0.password) }
        case let .sshKey(username, privateKey, passphrase)?:
            hooks.credential = .sshKey(username: username, privateKey: privateKey, passphrase: passphrase)
        case nil:
            break
        }
        hooks.certificateCheck = { certificate in verdict(certificate, endpoint) }
        return hooks
    }

    /// A fetch into the empty cache whose pack also streams to the empty secondaries it reaches, as it
    /// arrives (one pack for many; PackSeed.swift). A secondary's trouble never fails the fetch.
    static func fetch(_ remote: Remote, into repository: Repository, refspecs: [String], durable: Bool, seeding: FetchJob.Seeding,
                      reporter: JobReporter) throws -> [SeedOutcome] {
        let started = Date()
        let lastLine = Mutex<[String: Date]>([:])
        let seeder = PackSeeder(targets: seeding.targets, stall: seeding.stall) { name, line in
            // The supervisor routes these to the secondary's own line; one each half second is plenty.
            let now = Date()
            let due = lastLine.withLock { lastLine in
                if let last = lastLine[name], now.timeIntervalSince(last) < 0.5 { return false }
                lastLine[name] = now
                return true
            }
            if due { reporter.note(.about(remote: name, line)) }
        }
        seeder.open()
        if seeder.isEmpty {
            try remote.fetch(refspecs: refspecs, durable: durable)
            return seeder.finish()
        }
        try repository.teePacks(PackTee { bytes in seeder.feed(bytes) })
        do {
            try remote.fetch(refspecs: refspecs, durable: durable) { heads in seeder.begin(heads) }
        } catch {
            seeder.abandon("the fetch from the primary failed, so the pack was not sent whole")
            throw error
        }
        return seeder.finish(deadline: started.addingTimeInterval(seeding.deadline))
    }

    /// git's transfer unless the job asks for libgit2's or git cannot carry it. A local path
    /// always goes through git: libgit2 would write its refs directly, skipping the target's hooks
    /// and receive.deny* (git's receive-pack is the server there, as it is for `git push /path`).
    static func transfer(for job: PushJob, hooks: TransferHooks, caBundle: String?) -> any PackTransfer {
        let git = GitTransfer(endpoint: job.remote, hooks: hooks, caBundle: caBundle)
        if isLocalPath(job.remote.url) { return git }
        if job.transfer == .libgit2 || !GitTransfer.handles(job.remote) { return Libgit2Transfer(endpoint: job.remote, hooks: hooks) }
        return git
    }

    static func isLocalPath(_ url: String) -> Bool { url.hasPrefix("/") }

    /// May this endpoint be pushed to, asked along the path its pushes take: git's own transfer
    /// (OpenSSH for SSH) from an empty scratch repository with `--dry-run`, where the push would go
    /// through git; libgit2's connection for a push otherwise. Nothing is pushed.
    static func probePush(_ job: PushAccessJob, hooks: TransferHooks, caBundle: String?) throws -> Listing {
        if isLocalPath(job.remote.url) || !GitTransfer.handles(job.remote) {
            let remote = try Remote(url: job.remote.url, hooks: hooks)
            defer { remote.disconnect() }
            return Listing(heads: try remote.listHeads(.push))
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("gitmirror-probe-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: scratch) }
        _ = try Repository.openOrCreateBare(at: scratch.path)
        try GitTransfer(endpoint: job.remote, hooks: hooks, caBundle: caBundle).probe(from: scratch.path)
        return Listing(heads: [])
    }

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

    /// The remote's refs and HEAD's branch; a local primary libgit2 cannot read is listed by git (LocalPrimary).
    static func listRefs(_ url: String, hooks: TransferHooks) throws -> (heads: [RemoteHead], head: String?) {
        do {
            let remote = try Remote(url: url, hooks: hooks)
            try remote.connect(.fetch)
            let heads = try remote.advertisedHeads()
            let head = try? remote.defaultBranch()
            remote.disconnect()
            return (heads, head)
        } catch {
            // libgit2 reads a local primary's refs itself and stops at one it cannot hold; git lists them all.
            guard LocalPrimary.isLocal(url), let listed = try? LocalPrimary.list(url) else { throw error }
            return listed
        }
    }

    /// Fetches the job's refspecs into the cache (seeding secondaries as the pack arrives, when asked);
    /// a local primary libgit2 cannot read is fetched by git, and its secondaries are then pushed as usual.
    static func fetchRefs(_ job: FetchJob, into repository: Repository, hooks: TransferHooks, reporter: JobReporter) throws -> [SeedOutcome] {
        // The primary's refs can be fetched again: they are written without an fsync each (20,000 refs,
        // 20,000 fsyncs), and the packs that came are synced once at the end. A fetch into backup refs
        // (a secondary's old tips: the only copy) keeps every write durable.
        let durable = job.refspecs.contains { $0.contains(":refs/gitmirror/") }
        return try unsynced(unless: durable, cache: job.cache) {
            try fetchRefs(job, into: repository, hooks: hooks, durable: durable, reporter: reporter)
        }
    }

    /// `body` with libgit2's fsync off unless `durable`; then the packs it wrote are synced, once each.
    static func unsynced<R>(unless durable: Bool, cache: String, _ body: () throws -> R) throws -> R {
        let started = Date()
        if !durable { try Libgit2.enableFsync(false) }
        defer {
            if !durable {
                do { try Libgit2.enableFsync(true) } catch {
                    // A worker that could not make writes durable again must not run another job.
                    FileHandle.standardError.write(Data("gitmirror worker: cannot enable fsync again: \(error)\n".utf8))
                    exit(70)
                }
                syncPacks(cache, since: started)
            }
        }
        return try body()
    }

    private static func fetchRefs(_ job: FetchJob, into repository: Repository, hooks: TransferHooks, durable: Bool,
                                  reporter: JobReporter) throws -> [SeedOutcome] {
        do {
            let remote = try Remote(url: job.remote.url, in: repository, hooks: hooks)
            if let seeding = job.seeding, !seeding.targets.isEmpty {
                return try fetch(remote, into: repository, refspecs: job.refspecs, durable: durable, seeding: seeding, reporter: reporter)
            }
            if let haves = job.haves, !haves.isEmpty {
                let scratch = try FetchScratch(cache: job.cache, offering: haves)
                defer { scratch.remove() }
                let negotiating = try Remote(url: job.remote.url, in: scratch.repository, hooks: hooks)
                try negotiating.fetch(refspecs: job.refspecs, durable: durable, refsInto: repository, adopt: scratch.adoptPacks)
                return []
            }
            try remote.fetch(refspecs: job.refspecs, durable: durable)
            return []
        } catch {
            guard LocalPrimary.isLocal(job.remote.url),
                  (try? LocalPrimary.fetch(job.remote.url, into: job.cache, refspecs: job.refspecs)) != nil else { throw error }
            return []
        }
    }

    /// fsync the packs (and their indexes) written since `since`, and their folder: one per pack, not per ref.
    static func syncPacks(_ cache: String, since: Date) {
        let folder = cache + "/objects/pack"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where name.hasSuffix(".pack") || name.hasSuffix(".idx") {
            let path = folder + "/" + name
            guard let modified = FileStatus(path)?.modified,
                  modified >= since.addingTimeInterval(-1) else { continue }
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            if descriptor >= 0 { _ = fsync(descriptor); close(descriptor) }
        }
        let directory = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 { _ = fsync(directory); close(directory) }
    }
}

extension WireCredential {
    /// The username and password an HTTP(S) server is given: a password as configured (user `git` when
    /// none is named), a CodeCommit password signed now (call it for each request). Nil for an SSH key.
    func login() -> (username: String, password: String)? {
        switch self {
        case let .password(username, password): (username ?? "git", password)
        case let .aws(keys, region, host, path): SigV4.codeCommitCredentials(host: host, path: path, region: region, credentials: keys)
        case .sshKey: nil
        }
    }
}
