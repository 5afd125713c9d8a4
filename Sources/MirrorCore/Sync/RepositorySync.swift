import Foundation
import Synchronization
import Git

/// One sync (or plan) of one repository, following DESIGN.md's seven steps.
/// The supervisor side: plans, runs workers, and alone writes SQLite.
public struct RepositorySync: Sendable {
    public struct Options: Sendable {
        /// Plan only: fetch the primary and plan every secondary, push nothing, record nothing.
        public var planOnly = false
        public var trigger = "manual"
        /// How long to wait for another process's lock on the same repository.
        public var lockWait: TimeInterval = 15 * 60

        public init() {}
    }

    public let config: Config
    public let store: StateStore?
    /// Runs the jobs, within the host limits they carry (the daemon's are shared by every sync of the process).
    public let workers: Workers
    public let credentials: CredentialResolver
    public let options: Options
    /// Where what each remote is doing goes (the caller's display, and the state database for `status`).
    let report: @Sendable (ProgressNote) -> Void

    public init(config: Config, store: StateStore?, workers: Workers, credentials: CredentialResolver,
                options: Options = Options(),
                progress: @escaping @Sendable (ProgressNote) -> Void = { _ in }) {
        self.config = config
        self.store = store
        self.workers = workers
        self.credentials = credentials
        self.options = options
        // What a remote is doing also goes to the state database (every few seconds) for `status`.
        let recorder = options.planOnly ? nil : store.map { ProgressRecorder(store: $0) }
        report = { note in
            progress(note)
            recorder?.note(note)
        }
    }

    /// What a remote is doing now.
    func progress(_ repository: String, _ remote: String, _ message: String) {
        report(ProgressNote(repository: repository, remote: remote, message: message))
    }

    /// A remote's work in this run is over.
    func finished(_ repository: String, _ remote: String, _ verdict: String) {
        report(ProgressNote(repository: repository, remote: remote, message: verdict, finished: true))
    }

    var redactor: Redactor { credentials.redactor }

    func cache(_ mirror: Mirror) -> Cache { Cache(name: mirror.name, stateDirectory: config.stateDirectory) }
    func cachePath(_ mirror: Mirror) -> String { cache(mirror).path }

    public func run(_ mirror: Mirror) -> RepositoryReport {
        let started = Date()
        var primary = RemoteReport(repository: mirror.name, remote: "primary", role: .primary, url: mirror.primary.url.display, result: .ok)
        let stopping = { workers.isStopping }
        if stopping() {
            primary.result = .interrupted
            primary.failure = SyncFailure(.interrupted, "gitmirror is shutting down; this repository was not started")
            return RepositoryReport(repository: mirror.name, runId: nil, primary: primary, secondaries: [], duration: 0)
        }

        // 1. The lock: one writer per cache.
        let lock: RepositoryLock
        do {
            let lockPath = config.cacheDirectory.appendingPathComponent("\(mirror.name).lock").path
            switch try RepositoryLock.acquire(path: lockPath, wait: options.lockWait, giveUp: stopping) {
            case .acquired(let acquired):
                lock = acquired
            case .busy where stopping():
                primary.result = .interrupted
                primary.failure = SyncFailure(.interrupted, "stopped while waiting for another gitmirror's lock on '\(mirror.name)'; nothing was done")
                return RepositoryReport(repository: mirror.name, runId: nil, primary: primary, secondaries: [], duration: Date().timeIntervalSince(started))
            case .busy(let holder):
                primary.result = .failed
                primary.failure = SyncFailure(.timeout, "another gitmirror process\(holder.map { " (pid \($0))" } ?? "") is syncing '\(mirror.name)' and still held its lock after \(formatDuration(options.lockWait)); nothing was done")
                return RepositoryReport(repository: mirror.name, runId: nil, primary: primary, secondaries: [], duration: Date().timeIntervalSince(started))
            }
        } catch {
            primary.result = .failed
            primary.failure = error as? SyncFailure ?? SyncFailure(.internal, "\(error)")
            return RepositoryReport(repository: mirror.name, runId: nil, primary: primary, secondaries: [], duration: Date().timeIntervalSince(started))
        }
        // Outcomes with nothing for the journal wait for the run's end, to be written with it.
        let held = HeldOutcomes(since: started)
        var finished = false
        defer {
            if !options.planOnly && !finished {
                try? store?.recordRemoteOutcomes(held.take())
                try? store?.endRun(repository: mirror.name)
            }
            lock.release()
        }

        var runId: Int64?
        if !options.planOnly, let store {
            do {
                let begun = try store.beginRun(repository: mirror.name, trigger: options.trigger)
                if let previous = begun.previousLease, previous.pid != getpid() {
                    progress(mirror.name, "primary", "took over the lease left by pid \(previous.pid) on \(previous.host), which no longer holds the lock")
                }
                runId = begun.runId
            } catch {
                primary.result = .failed
                primary.failure = SyncFailure(.internal, "cannot write the state database \(config.databaseURL.path): \(error)")
                return RepositoryReport(repository: mirror.name, runId: nil, primary: primary, secondaries: [], duration: Date().timeIntervalSince(started))
            }
        }

        var notes: [String] = []
        let verdict = checkForChange(mirror, now: started)
        if case .unchanged(let listedAt) = verdict {
            var report = unchangedReport(mirror, listedAt: listedAt, started: started)
            report.runId = runId
            if let runId, let store {
                do {
                    try store.finishRun(repository: mirror.name, id: runId, result: .ok, summary: report.primary.unchanged, outcomes: held.take())
                    finished = true
                } catch {
                    report.journalFailures.append("the run's end: \(error)")
                }
            }
            return report
        }
        if case .list(_, let note?) = verdict { notes.append(note) }
        // The cache is gitmirror's own: a link planted in its place would have the sweep, the fetch and
        // the pushes work in whatever it points at. Such a run touches nothing and fails as config.
        let cacheProblem = OwnedPath.problem(cachePath(mirror), directory: true)
        let swept = cacheProblem == nil ? cache(mirror).sweep(olderThan: lock.acquiredAt) : []
        if !swept.isEmpty {
            let note = "removed \(swept.count) file\(swept.count == 1 ? "" : "s") a killed process left in the cache (\(swept.prefix(5).joined(separator: ", "))\(swept.count > 5 ? ", …" : ""))"
            progress(mirror.name, "primary", note)
            notes.append(note)
        }

        // The secondaries are listed while the primary is: unless this is the first fetch into an empty
        // cache, whose pack may stream to empty secondaries (PackSeed) and change what they hold.
        let cacheRefs = cacheProblem == nil ? Self.cacheRefs(cachePath(mirror)) : [:]
        let prelisting = cacheRefs.isEmpty ? nil : Prelisting(mirror, sync: self)
        defer { prelisting?.waitAll() }
        var secondaries: [(report: RemoteReport, fingerprint: String?)] = []
        var repaired = false
        var seeded: [String: SeedOutcome] = [:]
        do {
            if let cacheProblem { throw SyncFailure(.config, cacheProblem) }
            var source: [String: ObjectID]
            do {
                source = try fetchPrimary(mirror, report: &primary, seeded: &seeded, cacheRefs: cacheRefs.isEmpty ? nil : cacheRefs)
            } catch let failure as SyncFailure where Self.suspectsCache(failure) {
                // The fetch reads the cache too (to negotiate): a damaged one is rebuilt, once.
                guard let note = try repairCache(mirror, runId: runId, suspicion: failure, held: held) else { throw failure }
                notes.append(note)
                repaired = true
                source = try fetchPrimary(mirror, report: &primary, seeded: &seeded)
            }
            self.finished(mirror.name, "primary", "fetched")
            let untouchable = Set(primary.refs.filter { $0.outcome == .failed }.map(\.ref))
            secondaries = syncSecondaries(mirror, mirror.secondaries, source: source, seeded: seeded, primaryHead: primary.head,
                                          prelisting: repaired ? nil : prelisting, runId: runId, held: held, untouchable: untouchable)
            let suspects = secondaries.filter { $0.report.failure.map(Self.suspectsCache) == true }
            if !suspects.isEmpty, !repaired, let suspicion = suspects.first?.report.failure,
               let note = try repairCache(mirror, runId: runId, suspicion: suspicion, held: held) {
                notes.append(note)
                source = try fetchPrimary(mirror, report: &primary, seeded: &seeded)
                let again = syncSecondaries(mirror, mirror.secondaries.filter { spec in suspects.contains { $0.report.remote == spec.name } },
                                            source: source, seeded: seeded, primaryHead: primary.head, runId: runId, held: held,
                                            untouchable: Set(primary.refs.filter { $0.outcome == .failed }.map(\.ref)))
                secondaries = secondaries.map { entry in again.first { $0.report.remote == entry.report.remote } ?? entry }
            }
        } catch {
            primary.failure = redacted(error as? SyncFailure ?? SyncFailure(.internal, "\(error)"))
            primary.result = primary.failure.map(RemoteReport.Result.ending(in:)) ?? .failed
        }
        // Outcomes held back for a possible repair are recorded now, whatever became of them.
        if let runId, !options.planOnly {
            for entry in secondaries where entry.report.failure.map(Self.suspectsCache) == true {
                guard let spec = mirror.secondaries.first(where: { $0.name == entry.report.remote }) else { continue }
                record(entry.report, runId: runId, remote: spec, fingerprint: entry.fingerprint, held: held)
            }
        }
        primary.duration = Date().timeIntervalSince(started)

        var report = RepositoryReport(repository: mirror.name, runId: runId, primary: primary, secondaries: secondaries.map(\.report),
                                      duration: Date().timeIntervalSince(started))
        if let runId, let store {
            let result: RunResult = report.wasInterrupted || (workers.isStopping && !report.inStep) ? .interrupted
                : report.primary.failure != nil ? .failed : (report.inStep ? .ok : .failed)
            let failures = report.primary.failure?.description ?? report.secondaries.compactMap { $0.failure.map { "\($0.errorClass.rawValue)" } }.joined(separator: ", ")
            let summary = (notes + (failures.isEmpty ? [] : [failures])).joined(separator: "; ")
            let outcomes = held.take() + [outcome(primary, runId: runId, fingerprint: nil, held: held)].compactMap { $0 }
            do {
                try store.finishRun(repository: mirror.name, id: runId, result: result, summary: summary.isEmpty ? nil : redactor.redact(summary),
                                    outcomes: outcomes)
                finished = true
            } catch {
                progress(mirror.name, "primary", "could not record the run's end in SQLite: \(error)")
                held.journalFailed("the run's end and \(outcomes.count) remote outcome\(outcomes.count == 1 ? "" : "s"): \(error)")
            }
        }
        // Whatever could not be written is said, and the run is out of step: every moved ref is journaled, or the run says it is not.
        report.journalFailures = held.journalFailures.map(redactor.redact)
        keepChangeCheck(verdict, report: report, mirror: mirror)
        return report
    }

    // MARK: steps 2 and 3: the primary

    /// Lists the primary, fetches what changed into the cache, and returns the
    /// primary's refs as the cache now holds them. Into an empty cache, the pack also streams to the
    /// empty secondaries it can reach as it arrives; `seeded` gets what each of them accepted.
    /// `cacheRefs`: the cache's refs as this run read them already (it holds the lock: they are still so).
    func fetchPrimary(_ mirror: Mirror, report: inout RemoteReport, seeded: inout [String: SeedOutcome],
                      cacheRefs: [String: ObjectID]? = nil) throws -> [String: ObjectID] {
        let endpoint = try credentials.endpoint(for: mirror.primary, config: config)
        let limits = Workers.Limits(timeout: mirror.primary.policy.timeout, stall: mirror.primary.policy.stallTimeout)
        progress(mirror.name, "primary", "listing refs")
        let listed = try run(ListJob(remote: endpoint), on: mirror.primary, repository: mirror.name, limits: limits)
        let heads = listed.heads
        report.head = listed.defaultBranch

        let patterns = Array(Set(mirror.secondaries.flatMap(\.policy.refs))).sorted()
        var wanted = Dictionary(heads.filter { RefFilter.matches($0.name, patterns) }.map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
        // A ref the cache cannot hold (its pushers chose the name) fails alone: it is not fetched, and the
        // secondaries keep whatever they have of it; every other ref is mirrored.
        var leftOut = wanted.keys.sorted().compactMap { name in RefName.problem(name).map { (name: name, problem: $0) } }
        for entry in leftOut { wanted[entry.name] = nil }
        defer { Self.reportLeftOut(leftOut, primary: wanted, in: &report) }
        // An empty primary is an outage or an accident, never an instruction to delete everything.
        guard !heads.filter({ $0.name.hasPrefix("refs/") }).isEmpty else {
            throw SyncFailure(.primaryEmpty, "the primary \(mirror.primary.url) advertises no refs; nothing was fetched, pushed or deleted anywhere. Check that the primary repository is intact")
        }

        let cachePath = self.cachePath(mirror)
        // The cache is opened only when it is to change: a pass where nothing moved reads its refs once.
        var opened: Repository?
        func cache() throws -> Repository {
            if let opened { return opened }
            let repository = try gitCall { try Repository.openOrCreateBare(at: cachePath) }
            opened = repository
            return repository
        }
        let everything = try cacheRefs ?? gitCall { try cache().references(matching: "refs/*") }
        var cached = everything.filter { !$0.key.hasPrefix("refs/gitmirror/") }
        var changed = false
        // Refs the primary no longer has leave the cache first (their objects stay), as `git fetch
        // --prune` does: a branch renamed into a folder (`a` → `a/b`, or back) then has room.
        for name in cached.keys.sorted() where wanted[name] == nil {
            let repository = try cache()
            try gitCall { try repository.deleteReference(name) }
            cached[name] = nil
            changed = true
        }
        let missing = wanted.filter { cached[$0.key] != $0.value }.keys.sorted()
        if !missing.isEmpty {
            progress(mirror.name, "primary", "fetching \(missing.count) ref\(missing.count == 1 ? "" : "s")")
            var fetch = FetchJob(remote: endpoint, cache: cachePath, refspecs: missing.map { "+\($0):\($0)" })
            // With no ref at all in the cache, no object is offered to the primary: its pack is complete.
            if everything.isEmpty && !options.planOnly {
                let targets = seedTargets(mirror, wanted: wanted)
                let stalls = mirror.secondaries.filter { spec in targets.contains { $0.name == spec.name } }.map(\.policy.stallTimeout)
                if let stall = stalls.min() {
                    fetch.seeding = FetchJob.Seeding(targets: targets, stall: stall,
                                                     deadline: max(mirror.primary.policy.timeout * 0.8, mirror.primary.policy.timeout - 60))
                }
            }
            let result = try run(fetch, on: mirror.primary, repository: mirror.name, limits: limits)
            report.bytes = result.bytes
            for outcome in result.seeded {
                seeded[outcome.name] = outcome
                if !outcome.created.isEmpty || outcome.note != nil {
                    let took = "took the primary's pack as it arrived: \(outcome.created.count) ref\(outcome.created.count == 1 ? "" : "s") created"
                    progress(mirror.name, outcome.name, outcome.note.map { "\(took); \($0): the rest is pushed as usual" } ?? took)
                }
            }
            opened = try gitCall { try Repository.openBare(at: cachePath) }
            changed = true
        }
        var source: [String: ObjectID] = [:]
        let now = changed ? try gitCall { try cache().references(matching: "refs/*") } : everything
        for name in wanted.keys.sorted() {
            guard let id = now[name] else {
                // The cache would not store it (git refuses a branch that points at a blob or a tree): that ref fails alone.
                leftOut.append((name, "the cache would not store it (a branch must point at a commit; this one points at \(wanted[name]!.hex))"))
                continue
            }
            source[name] = id
        }
        return source
    }

    /// The primary's refs that could not be mirrored, each a failed ref of the primary's report (in its
    /// history), and one `rejected` failure naming the first: the other refs go on to the secondaries.
    static func reportLeftOut(_ leftOut: [(name: String, problem: String)], primary wanted: [String: ObjectID], in report: inout RemoteReport) {
        guard let first = leftOut.first else { return }
        for entry in leftOut {
            report.refs.append(RefOutcome(ref: entry.name, action: .create, old: nil, new: wanted[entry.name], outcome: .failed,
                                          message: "cannot be mirrored: \(entry.problem)"))
        }
        let count = leftOut.count
        report.result = .failed
        report.failure = SyncFailure(.rejected, "\(count) ref\(count == 1 ? "" : "s") of the primary cannot be mirrored and \(count == 1 ? "was" : "were") left out: \(RefName.shown(first.name)): \(first.problem)\(count > 1 ? " (and \(count - 1) more: gitmirror history REPO --remote primary)" : ""); every other ref was mirrored. Rename or repoint \(count == 1 ? "it" : "them") on the primary")
    }

    /// The empty secondaries the primary's pack may stream to during the fetch (first seed): those this
    /// process reaches itself (git://, SSH through OpenSSH, a local path), with the refs the plan would
    /// create on them. At most max_parallel_pushes of them, as for pushes.
    func seedTargets(_ mirror: Mirror, wanted: [String: ObjectID]) -> [SeedTarget] {
        var targets: [SeedTarget] = []
        // A secondary with lfs: true gets its LFS objects before any ref: it is never seeded from the fetch.
        for secondary in mirror.secondaries where targets.count < config.maxParallelPushes && !secondary.policy.lfs {
            let url = secondary.url
            let scheme = url.scheme == .file ? "file" : url.scheme.rawValue
            guard let access = try? credentials.endpoint(for: secondary, config: config), SeedSession.reaches(scheme, access: access) else { continue }
            let forge = Forge.of(url)
            let refs = RefPlan.make(source: wanted, target: [:], policy: secondary.policy) { _, _ in false }
                .refs.filter { $0.action == .create && forge.refusal(of: $0.ref) == nil }.map(\.ref)
            guard !refs.isEmpty else { continue }
            targets.append(SeedTarget(name: secondary.name, access: access, scheme: scheme, user: url.user, host: url.host,
                                      port: url.port, path: url.path, refs: refs))
        }
        return targets
    }

    // MARK: steps 4-7: the secondaries, in parallel

    /// Syncs these secondaries in parallel. Each outcome is recorded as it comes (so that `status` shows
    /// it while slower ones run; one with nothing for the journal may wait in `held` for the run's end),
    /// except one that suspects the cache: the caller may repair and re-run it.
    func syncSecondaries(_ mirror: Mirror, _ secondaries: [RemoteSpec], source: [String: ObjectID], seeded: [String: SeedOutcome] = [:],
                         primaryHead: String? = nil, prelisting: Prelisting? = nil, runId: Int64?,
                         held: HeldOutcomes? = nil, untouchable: Set<String> = []) -> [(report: RemoteReport, fingerprint: String?)] {
        concurrently(secondaries.count, limit: config.maxParallelPushes) { index in
            let secondary = secondaries[index]
            let outcome = self.syncSecondary(mirror, secondary, source: source, seeded: seeded[secondary.name], primaryHead: primaryHead,
                                             listed: prelisting?.listing(of: secondary.name), untouchable: untouchable, runId: runId)
            if let runId, !self.options.planOnly, outcome.report.failure.map(Self.suspectsCache) != true {
                self.record(outcome.report, runId: runId, remote: secondary, fingerprint: outcome.fingerprint, held: held)
            }
            return (report: outcome.report, fingerprint: outcome.fingerprint)
        }
    }

    func syncSecondary(_ mirror: Mirror, _ secondary: RemoteSpec, source: [String: ObjectID], seeded: SeedOutcome? = nil,
                       primaryHead: String? = nil, listed: Prelisting.Pending? = nil,
                       untouchable: Set<String> = [], runId: Int64? = nil) -> (report: RemoteReport, fingerprint: String?) {
        let started = Date()
        var report = RemoteReport(repository: mirror.name, remote: secondary.name, role: .secondary, url: secondary.url.display, result: .ok)
        var work = SecondarySync(sync: self, mirror: mirror, secondary: secondary, source: source, report: report)
        work.seeded = seeded?.created ?? [:]
        work.primaryHead = primaryHead
        work.listed = listed
        work.untouchable = untouchable
        work.runId = runId
        do {
            try work.run()
            report = work.report
        } catch {
            report = work.report
            report.failure = redacted(error as? SyncFailure ?? SyncFailure(.internal, "\(error)"))
            report.result = report.failure.map(RemoteReport.Result.ending(in:)) ?? .failed
            for index in report.refs.indices where report.refs[index].outcome == .planned && report.refs[index].action.pushes {
                report.refs[index].outcome = .failed
                report.refs[index].message = report.failure?.message
            }
        }
        // A seeded secondary's work began with the fetch.
        report.duration = Date().timeIntervalSince(started) + (seeded?.created.isEmpty == false ? seeded?.seconds ?? 0 : 0)
        finished(mirror.name, secondary.name, report.result.rawValue)
        return (report, work.finalHeads.map(fingerprint))
    }

    /// The refs the cache holds (read from ref files, never an object); none when it cannot be read.
    static func cacheRefs(_ path: String) -> [String: ObjectID] {
        guard FileManager.default.fileExists(atPath: path + "/objects") else { return [:] }
        return (try? Repository.openBare(at: path).references(matching: "refs/*")) ?? [:]
    }

    /// Jobs that only read the cache: no server to wait for, so silence this long means a read that never ends.
    static let cacheStall: TimeInterval = 20

    func cacheLimits(_ remote: RemoteSpec) -> Workers.Limits {
        Workers.Limits(timeout: remote.policy.timeout, stall: min(remote.policy.stallTimeout, Self.cacheStall))
    }

    // MARK: a damaged cache

    /// Whether a failure may come from the cache's own objects rather than from a server.
    static func suspectsCache(_ failure: SyncFailure) -> Bool { failure.cacheDamage != nil }

    /// Reads every object of the cache in a worker; returns what is damaged, or nil when all is readable.
    func damage(in mirror: Mirror) throws -> String? {
        let path = cachePath(mirror)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let last = Mutex<String?>(nil)
        let limits = Workers.Limits(timeout: mirror.primary.policy.timeout, stall: min(mirror.primary.policy.stallTimeout, Self.cacheStall / 2))
        progress(mirror.name, "primary", "verifying every object of the cache")
        let result = Result { () throws(SyncFailure) in
            try workers.run(VerifyJob(cache: path, announceFrom: 0), for: mirror.name, limits: limits) { note in
                if case .reading(let object) = note { last.withLock { $0 = object } }
            }
        }
        switch result {
        case .success(let verified):
            return verified.damage
        case .failure(let failure) where failure.errorClass == .timeout && !workers.isStopping:
            let object = last.withLock { $0 }
            return object.map { "object \($0) cannot be read: reading it never finishes (a truncated or corrupt object)" }
                ?? "reading its objects never finishes (\(failure.message))"
        case .failure(let failure) where workers.isStopping:
            throw failure
        case .failure(let failure):
            return failure.message
        }
    }

    /// Confirms a suspicion of damage; when the cache is damaged, moves it to `state_dir/quarantine/`,
    /// starts an empty one (the caller fetches the primary into it before any secondary is touched)
    /// and carries the backup refs over where their objects can still be read. Returns a note for the
    /// run's summary, or nil when the cache turned out to be intact.
    func repairCache(_ mirror: Mirror, runId: Int64?, suspicion: SyncFailure, held: HeldOutcomes? = nil) throws -> String? {
        // An object the cache lacks is damage too: everything in it came from the primary.
        let missing = suspicion.cacheDamage.flatMap { $0.range(of: "no match for id") != nil ? $0 : nil }
        guard let damage = try damage(in: mirror) ?? missing else { return nil }
        let cache = self.cache(mirror)
        let stamp = Self.backupStamp()
        let damaged = SyncFailure(.internal, "the cache \(cache.path) is damaged: \(damage)")
        progress(mirror.name, "primary", "\(damaged.description); moving it aside and rebuilding it from the primary")
        let quarantined: String
        do {
            quarantined = try cache.quarantine(stamp: stamp)
        } catch {
            throw SyncFailure(.internal, "\(damaged.message), and it cannot be moved aside (\(error)); move it away by hand")
        }
        _ = try gitCall { try Repository.openOrCreateBare(at: cache.path) }

        // Backup refs are the only copy of what a forced push overwrote: carry over what still reads.
        let backups = (try? Repository.openBare(at: quarantined).references(matching: "refs/gitmirror/*")) ?? [:]
        var lost: [(ref: String, id: ObjectID, reason: String)] = []
        if !backups.isEmpty {
            progress(mirror.name, "primary", "carrying \(backups.count) backup ref\(backups.count == 1 ? "" : "s") over from the damaged cache")
            var fetch = FetchJob(remote: .local(quarantined), cache: cache.path, refspecs: backups.keys.sorted().map { "+\($0):\($0)" })
            let limits = Workers.Limits(timeout: mirror.primary.policy.timeout, stall: min(mirror.primary.policy.stallTimeout, Self.cacheStall / 2))
            let carry = { (fetch: FetchJob) in Result { () throws(SyncFailure) in try workers.run(fetch, for: mirror.name, limits: limits) } }
            if case .failure = carry(fetch) {
                // One by one: a backup whose history reaches the damaged object is lost alone.
                for (ref, id) in backups.sorted(by: { $0.key < $1.key }) {
                    fetch.refspecs = ["+\(ref):\(ref)"]
                    if case .failure(let failure) = carry(fetch) {
                        lost.append((ref, id, failure.message))
                    }
                }
            }
        }
        if let runId, let store, !options.planOnly {
            let now = Date()
            var rows = [RefUpdate(id: nil, runId: runId, repository: mirror.name, remote: "cache", ref: "(cache)", oldOid: nil, newOid: nil,
                                  action: "quarantine", outcome: "rebuilt",
                                  message: redactor.redact("\(damaged.description); moved to \(quarantined) and rebuilt from the primary"),
                                  backupRef: nil, recordedAt: now)]
            rows += lost.map { entry in
                RefUpdate(id: nil, runId: runId, repository: mirror.name, remote: "cache", ref: entry.ref, oldOid: entry.id.hex, newOid: nil,
                          action: "carry_over", outcome: "lost",
                          message: redactor.redact("this backup ref's objects could not be read from the damaged cache (\(entry.reason)); it remains in \(quarantined)"),
                          backupRef: nil, recordedAt: now)
            }
            do {
                try store.recordJournal(rows)
            } catch {
                held?.journalFailed("the cache's repair (\(rows.count) journal row\(rows.count == 1 ? "" : "s")): \(error)")
            }
        }
        return "\(damaged.description); moved to \(quarantined) and rebuilt from the primary"
            + (backups.isEmpty ? "" : "; \(backups.count - lost.count) of \(backups.count) backup refs carried over")
            + (lost.isEmpty ? "" : " (lost: \(lost.map(\.ref).joined(separator: ", ")))")
    }

    /// Splits a plan's changes into pushes of at most `size` ref updates.
    static func batches(_ changes: [RefOutcome], size: Int?) -> [[RefOutcome]] {
        guard let size, size > 0, changes.count > size else { return [changes] }
        return stride(from: 0, to: changes.count, by: size).map { Array(changes[$0..<min($0 + size, changes.count)]) }
    }

    /// `create: true`: a missing repository is created through CodeCommit's or the forge's API, then listed again.
    func createRepository(_ secondary: RemoteSpec, repository: String) throws {
        do {
            if let api = try codeCommitAPI(for: secondary), let target = secondary.url.codeCommit {
                if try !api.repositoryExists(target.repository) {
                    progress(repository, secondary.name, "creating CodeCommit repository \(target.repository) in \(target.region)")
                    try api.createRepository(target.repository, description: secondary.description)
                }
            } else if let (client, path) = try forgeClient(for: secondary) {
                if try client.repository(at: path) == nil {
                    progress(repository, secondary.name, "creating \(secondary.visibility) repository \(path) through the \(secondary.forge!.kind.displayName) API")
                    try client.createRepository(at: path, visibility: secondary.visibility, description: secondary.description)
                }
            }
        } catch {
            throw redacted(SyncFailure(error.errorClass, "secondary '\(secondary.name)': \(error.message)"))
        }
    }

    /// Points a secondary's HEAD at `branch`; false when this server has no way gitmirror knows.
    func setDefaultBranch(of secondary: RemoteSpec, to branch: String, repository: String) throws -> Bool {
        if let api = try codeCommitAPI(for: secondary), let target = secondary.url.codeCommit {
            try api.updateDefaultBranch(target.repository, to: branch)
            return true
        }
        if let (client, path) = try forgeClient(for: secondary) {
            try client.setDefaultBranch(of: path, to: branch)
            return true
        }
        if secondary.url.scheme == .file {
            // A bare repository on a path this machine reaches: HEAD is a file of its own.
            let bare = FileManager.default.fileExists(atPath: secondary.url.path + "/objects")
            guard bare else { return false }
            try gitCall { try Repository.openBare(at: secondary.url.path).setHead(to: "refs/heads/\(branch)") }
            return true
        }
        return false
    }

    func codeCommitAPI(for remote: RemoteSpec) throws(SyncFailure) -> CodeCommitAPI? {
        guard let target = remote.url.codeCommit else { return nil }
        var spec = remote.credentialName.flatMap { config.credentials[$0]?.aws } ?? AWSCredentialSpec()
        if spec.profile == nil { spec.profile = target.profile }
        let keys = try credentials.awsCredentials(spec, name: remote.credentialName ?? "aws-default-chain", region: target.region)
        return CodeCommitAPI(region: target.region, credentials: keys, environment: credentials.environment)
    }

    /// The forge API of a remote and the repository's path there (`acme/widget`), with the remote's token.
    func forgeClient(for remote: RemoteSpec) throws(SyncFailure) -> (any ForgeClient, String)? {
        guard let forge = remote.forge else { return nil }
        let spec = remote.credentialName.flatMap { config.credentials[$0] }
        let token = try spec?.secret.map { (secret) throws(SyncFailure) in try credentials.read(secret, for: spec!.name, key: "token") }
        var path = remote.url.path
        while path.hasPrefix("/") { path.removeFirst() }
        while path.hasSuffix("/") { path.removeLast() }
        if path.hasSuffix(".git") { path.removeLast(4) }
        return (MirrorCore.forgeClient(forge, token: token, caBundle: spec?.caFile?.path), path)
    }

    // MARK: helpers

    /// Runs a job for `remote` (or on the cache, for a job of that kind); its notes are the remote's progress
    /// (a seeded secondary's, its own), and its failure says where.
    func run<J: Job>(_ job: J, on remote: RemoteSpec, repository: String, limits: Workers.Limits) throws(SyncFailure) -> J.Result {
        do {
            return try workers.run(job, for: repository, limits: limits) { note in
                switch note {
                case .progress(let line): progress(repository, remote.name, line)
                case .about(let other, let line): progress(repository, other, line)
                case .reading: break
                }
            }
        } catch var failure {
            let onCache = J.kind == .cache
            // A job that only reads the cache and never finishes is reading a damaged object.
            if onCache, failure.errorClass == .timeout, !workers.isStopping {
                failure.cacheDamage = "reading the cache did not finish (\(failure.message))"
            }
            let place = onCache ? "the cache of '\(repository)'" : "\(remote.role == .primary ? "primary" : "secondary '\(remote.name)'") \(remote.url)"
            throw redacted(SyncFailure(failure.errorClass, "\(place): \(failure.message)", cacheDamage: failure.cacheDamage))
        }
    }

    /// Cache calls that read no object (refs, opening): a failure is a local fault, named as one.
    func gitCall<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as GitError {
            let lower = error.message.lowercased()
            if lower.contains("permission denied") || lower.contains("read-only file system") || lower.contains("no space left") {
                throw Worker.localFault(error.message, cachePath: config.cacheDirectory.path) ?? SyncFailure(.internal, "the cache: \(error.description)")
            }
            throw SyncFailure(.internal, "the cache: \(error.description)")
        }
    }

    func redacted(_ failure: SyncFailure) -> SyncFailure {
        SyncFailure(failure.errorClass, redactor.redact(failure.message), cacheDamage: failure.cacheDamage.map(redactor.redact))
    }

    /// `20261123T081512Z`: the time a backup ref was written, in UTC (gmtime_r, not a DateFormatter,
    /// whose ICU set-up cost more than a whole no-op listing).
    static func backupStamp(_ date: Date = Date()) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec)
    }

    /// A short digest of what the remote advertises, to tell at a glance whether it changed.
    func fingerprint(_ heads: [RemoteHead]) -> String {
        var hash: UInt64 = 0xcbf29ce484222325
        for head in heads.sorted(by: { $0.name < $1.name }) {
            for byte in "\(head.name) \(head.id.hex)\n".utf8 {
                hash = (hash ^ UInt64(byte)) &* 0x100000001b3
            }
        }
        return String(format: "%016llx", hash)
    }

    /// Records a remote's outcome: at once, or held for the run's end when `held` takes it.
    func record(_ report: RemoteReport, runId: Int64, remote: RemoteSpec, fingerprint: String?, held: HeldOutcomes? = nil) {
        guard let store, let outcome = outcome(report, runId: runId, fingerprint: fingerprint, held: held) else { return }
        if let held, held.hold(outcome) { return }
        do {
            try store.recordRemoteOutcomes((held?.take() ?? []) + [outcome])
        } catch {
            progress(report.repository, report.remote, "could not record the outcome in SQLite: \(error)")
            held?.journalFailed("\(report.remote)'s outcome and \(outcome.refs.count) journal row\(outcome.refs.count == 1 ? "" : "s"): \(error)")
        }
    }

    /// Journals the refs a push is about to overwrite or delete, with their backups, as `pending`, before
    /// the push starts: if this process dies during it, history still shows the force and the backup
    /// (a later run settles the rows). Without that record nothing is overwritten.
    func journalPending(_ overwrites: [RefOutcome], of mirror: Mirror, _ secondary: RemoteSpec, runId: Int64?) throws {
        guard let store, let runId, !overwrites.isEmpty else { return }
        let now = Date()
        let rows = overwrites.map { ref in
            RefUpdate(id: nil, runId: runId, repository: mirror.name, remote: secondary.name, ref: ref.ref, oldOid: ref.old?.hex,
                      newOid: ref.new?.hex, action: ref.action.rawValue, outcome: RefUpdate.pending,
                      message: ref.message.map(redactor.redact), backupRef: ref.backupRef, recordedAt: now)
        }
        do {
            try store.recordPending(rows)
        } catch {
            throw SyncFailure(.internal, "cannot journal the \(rows.count) ref\(rows.count == 1 ? "" : "s") about to be overwritten in \(config.databaseURL.path) (\(error)); nothing was pushed to '\(secondary.name)'")
        }
    }

    /// Settles what an earlier, stopped run left pending on this secondary (StateStore.settlePending).
    func settlePending(_ mirror: Mirror, _ secondary: RemoteSpec, heads: [RemoteHead], runId: Int64?) {
        guard let store else { return }
        let current = Dictionary(heads.filter { $0.name.hasPrefix("refs/") }.map { ($0.name, $0.id.hex) }, uniquingKeysWith: { a, _ in a })
        do {
            let settled = try store.settlePending(repository: mirror.name, remote: secondary.name, holding: current, before: runId)
            if settled > 0 { progress(mirror.name, secondary.name, "settled \(settled) journal row\(settled == 1 ? "" : "s") a stopped run left pending") }
        } catch {
            progress(mirror.name, secondary.name, "could not settle the journal rows a stopped run left pending: \(error)")
        }
    }

    /// The rows a remote's outcome writes; nil for a remote without a verdict (stopped), whose state
    /// row stays as it was and whose refs applied before the stop are journaled here and now.
    func outcome(_ report: RemoteReport, runId: Int64, fingerprint: String?, held: HeldOutcomes? = nil) -> RemoteOutcome? {
        guard let store else { return nil }
        let now = Date()
        guard let condition = report.result.condition else {
            let applied = report.refs.filter { $0.outcome == .applied }.map { ref in
                RefUpdate(id: nil, runId: runId, repository: report.repository, remote: report.remote, ref: ref.ref,
                          oldOid: ref.old?.hex, newOid: ref.new?.hex, action: ref.action.rawValue, outcome: ref.outcome.rawValue,
                          message: ref.message.map(redactor.redact), backupRef: ref.backupRef, recordedAt: now)
            }
            if !applied.isEmpty {
                do {
                    try store.recordJournal(applied, replacingPending: (runId, report.remote))
                } catch {
                    held?.journalFailed("the \(applied.count) ref\(applied.count == 1 ? "" : "s") \(report.remote) took before the stop: \(error)")
                }
            }
            return nil
        }
        let row = RemoteState(repository: report.repository, remote: report.remote, role: report.role, url: redactor.redact(report.url),
                              state: condition, lastAttempt: now, lastSuccess: report.failure == nil ? now : nil,
                              lastErrorClass: report.failure?.errorClass, lastError: report.failure.map { redactor.redact($0.message) },
                              refsFingerprint: fingerprint, lastRunId: runId, head: report.head)
        let refs = report.refs.map { ref in
            RefUpdate(id: nil, runId: runId, repository: report.repository, remote: report.remote, ref: ref.ref,
                      oldOid: ref.old?.hex, newOid: ref.new?.hex, action: ref.action.rawValue, outcome: ref.outcome.rawValue,
                      message: ref.message.map(redactor.redact), backupRef: ref.backupRef, recordedAt: now)
        }
        return RemoteOutcome(state: row, refs: refs)
    }
}

/// Outcomes that can wait for the end of their repository's run, to be written in its one closing
/// transaction (`StateStore.finishRun`): those with no journal rows (a remote found in step, or one
/// that failed before changing anything), while the run is younger than `patience`. A run that
/// lasts longer writes each outcome as it comes, with any still held, so that `status` shows them
/// while a slow push goes on; a journal row (a ref applied, rejected or kept) is never held back.
final class HeldOutcomes: @unchecked Sendable {
    static let patience: TimeInterval = 1
    private let lock = NSLock()
    private let since: Date
    private var outcomes: [RemoteOutcome] = []
    private var failures: [String] = []

    init(since: Date) { self.since = since }

    /// A write to the state database this run could not make (it is reported, and the run is out of step).
    func journalFailed(_ what: String) { lock.withLock { failures.append(what) } }
    var journalFailures: [String] { lock.withLock { failures } }

    /// Holds the outcome and returns true, or returns false when it is to be written now.
    func hold(_ outcome: RemoteOutcome) -> Bool {
        guard outcome.refs.isEmpty, Date().timeIntervalSince(since) < Self.patience else { return false }
        lock.withLock { outcomes.append(outcome) }
        return true
    }

    /// The outcomes held, which are no longer.
    func take() -> [RemoteOutcome] {
        lock.withLock {
            defer { outcomes = [] }
            return outcomes
        }
    }
}


/// Writes what a remote is doing to the state database, for `status`: once its work has gone on for
/// `delay`, then its latest word at most every `interval`, and removes it when the remote is done.
/// A listing done in a tenth of a second writes nothing (it used to write a row and delete it: two of
/// the few transactions a no-op pass costs per remote); a remote that goes silent, as a hung server
/// does, still shows, since a timer writes what was last said.
final class ProgressRecorder: @unchecked Sendable {
    let store: StateStore
    let delay: TimeInterval
    let interval: TimeInterval
    private struct Entry {
        var started: Date
        var written: Date?
        var pending: SyncProgress?

        func due(at now: Date, delay: TimeInterval, interval: TimeInterval) -> Bool {
            written.map { now.timeIntervalSince($0) >= interval } ?? (now.timeIntervalSince(started) >= delay)
        }
    }
    /// By "repository/remote". Held while writing, so that a remote's row is never written after the
    /// remote is done and its row removed.
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private let timer: any DispatchSourceTimer

    init(store: StateStore, delay: TimeInterval = 1, interval: TimeInterval = 2) {
        self.store = store
        self.delay = delay
        self.interval = interval
        timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + delay / 2, repeating: delay / 2, leeway: .milliseconds(100))
        timer.setEventHandler { [weak self] in self?.flush() }
        timer.resume()
    }

    deinit { timer.cancel() }

    func note(_ note: ProgressNote, now: Date = Date()) {
        let (repository, remote, message) = (note.repository, note.remote, note.message)
        let key = "\(repository)/\(remote)"
        lock.lock()
        defer { lock.unlock() }
        if note.finished {
            if entries.removeValue(forKey: key)?.written != nil {
                try? store.clearProgress(repository: repository, remote: remote)
            }
            return
        }
        var entry = entries[key] ?? Entry(started: now)
        let progress = SyncProgress(repository: repository, remote: remote, phase: message, startedAt: entry.started, updatedAt: now)
        if entry.due(at: now, delay: delay, interval: interval) {
            try? store.recordProgress(progress)
            entry.written = now
            entry.pending = nil
        } else {
            entry.pending = progress
        }
        entries[key] = entry
    }

    /// Writes the words that have waited long enough.
    func flush(now: Date = Date()) {
        lock.lock()
        defer { lock.unlock() }
        for (key, entry) in entries {
            guard var progress = entry.pending, entry.due(at: now, delay: delay, interval: interval) else { continue }
            progress.updatedAt = now
            try? store.recordProgress(progress)
            entries[key]?.written = now
            entries[key]?.pending = nil
        }
    }
}
