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
        /// Start the workers of the pushes while the fetch runs (`sync`: each would otherwise start after
        /// it). The daemon keeps its workers between runs and starts none ahead.
        public var prestartWorkers = false
        /// List the primary on the fetch's own connection, in the fetch's worker (FetchJob.deciding): one
        /// connection and one job less when something moved, a transfer worker's place for a listing
        /// when nothing did. For a run of a few repositories or one a hook started; not for a pass.
        public var listOnFetchConnection = false

        public init() {}
    }

    let context: SyncContext

    public init(config: Config, store: StateStore?, workers: Workers, credentials: CredentialResolver,
                options: Options = Options(), warning: @escaping @Sendable (String) -> Void = { _ in },
                progress: @escaping @Sendable (ProgressNote) -> Void = { _ in }) {
        // What a remote is doing also goes to the state database (every few seconds) for `status`.
        let recorder = options.planOnly ? nil : store.map { ProgressRecorder(store: $0, unrecorded: warning) }
        context = SyncContext(config: config, store: store, workers: workers, credentials: credentials, options: options) { note in
            progress(note)
            recorder?.note(note)
        }
    }

    // The orchestration reads these often; the parts it runs get the context itself.
    var config: Config { context.config }
    var store: StateStore? { context.store }
    var workers: Workers { context.workers }
    var options: Options { context.options }
    var redactor: Redactor { context.redactor }
    func progress(_ repository: String, _ remote: String, _ message: String) { context.progress(repository, remote, message) }

    public func run(_ mirror: Mirror) -> RepositoryReport {
        let started = Date()
        if workers.isStopping {
            return Self.notStarted(mirror, .interrupted, SyncFailure(.interrupted, "gitmirror is shutting down; this repository was not started"), since: started)
        }
        // 1. The lock: one writer per cache.
        let lock: RepositoryLock
        switch takeLock(mirror, since: started) {
        case .success(let acquired): lock = acquired
        case .failure(let failed): return failed.report
        }
        defer { lock.release() }
        var runId: Int64?
        if !options.planOnly, let store {
            do {
                let begun = try store.beginRun(repository: mirror.name, trigger: options.trigger)
                if let previous = begun.previousLease, previous.pid != getpid() {
                    progress(mirror.name, "primary", "took over the lease left by pid \(previous.pid) on \(previous.host), which no longer holds the lock")
                }
                runId = begun.runId
            } catch {
                return Self.notStarted(mirror, .failed, SyncFailure(.internal, "cannot write the state database \(config.databaseURL.path): \(error)"), since: started)
            }
        }
        // Outcomes with nothing for the journal wait for the run's end, to be written with it.
        let held = HeldOutcomes(since: started)
        var report = work(mirror, runId: runId, held: held, lock: lock, started: started)
        // Whatever could not be written is said, and the run is out of step: every moved ref is journaled, or the run says it is not.
        report.journalFailures = held.journalFailures.map(redactor.redact)
        // Still under the lock: no fetch or repack is halfway.
        report.cache = CacheFigures(cache: context.cachePath(mirror))
        return report
    }

    /// A repository this run did not start on: the primary's report says why.
    static func notStarted(_ mirror: Mirror, _ result: RemoteReport.Result, _ failure: SyncFailure, since started: Date) -> RepositoryReport {
        var primary = RemoteReport(repository: mirror.name, remote: "primary", role: .primary, url: mirror.primary.url.display, result: result)
        primary.failure = failure
        return RepositoryReport(repository: mirror.name, runId: nil, primary: primary, secondaries: [], duration: Date().timeIntervalSince(started))
    }

    /// The repository's lock, or the report of a run that could not take it.
    func takeLock(_ mirror: Mirror, since started: Date) -> Result<RepositoryLock, Failed> {
        let stopping = { workers.isStopping }
        do {
            let lockPath = config.cacheDirectory.appendingPathComponent("\(mirror.name).lock").path
            switch try RepositoryLock.acquire(path: lockPath, wait: options.lockWait, giveUp: stopping) {
            case .acquired(let acquired):
                return .success(acquired)
            case .busy where stopping():
                return .failure(Failed(Self.notStarted(mirror, .interrupted, SyncFailure(.interrupted, "stopped while waiting for another gitmirror's lock on '\(mirror.name)'; nothing was done"), since: started)))
            case .busy(let holder):
                return .failure(Failed(Self.notStarted(mirror, .failed, SyncFailure(.timeout, "another gitmirror process\(holder.map { " (pid \($0))" } ?? "") is syncing '\(mirror.name)' and still held its lock after \(formatDuration(options.lockWait)); nothing was done"), since: started)))
            }
        } catch {
            return .failure(Failed(Self.notStarted(mirror, .failed, error as? SyncFailure ?? SyncFailure(.internal, "\(error)"), since: started)))
        }
    }

    /// A report that ends a run before it began, as an error for `Result`.
    struct Failed: Error {
        let report: RepositoryReport
        init(_ report: RepositoryReport) { self.report = report }
    }

    /// Writes the run's end with its outcomes; when that fails, at least ends the lease, and says what was not recorded.
    func finish(_ mirror: Mirror, runId: Int64, result: RunResult, summary: String?, outcomes: [RemoteOutcome], held: HeldOutcomes) {
        guard let store else { return }
        do {
            try store.finishRun(repository: mirror.name, id: runId, result: result, summary: summary, outcomes: outcomes)
        } catch {
            progress(mirror.name, "primary", "could not record the run's end in SQLite: \(error)")
            held.journalFailed("the run's end and \(outcomes.count) remote outcome\(outcomes.count == 1 ? "" : "s"): \(error)")
            do {
                try store.endRun(repository: mirror.name)
            } catch {
                held.journalFailed("the release of the run's lease (the next run takes it over): \(error)")
            }
        }
    }

    /// Steps 2 to 7, under the lock: the primary, then the secondaries; a damaged cache is repaired once.
    func work(_ mirror: Mirror, runId: Int64?, held: HeldOutcomes, lock: RepositoryLock, started: Date) -> RepositoryReport {
        var primary = RemoteReport(repository: mirror.name, remote: "primary", role: .primary, url: mirror.primary.url.display, result: .ok)
        var notes: [String] = []
        let verdict = checkForChange(mirror, now: started)
        if case .unchanged(let listedAt) = verdict {
            var report = unchangedReport(mirror, listedAt: listedAt, started: started)
            report.runId = runId
            if let runId { finish(mirror, runId: runId, result: .ok, summary: report.primary.unchanged, outcomes: held.take(), held: held) }
            return report
        }
        if case .list(_, let note?) = verdict { notes.append(note) }
        // The cache is gitmirror's own: a link planted in its place would have the sweep, the fetch and
        // the pushes work in whatever it points at. Such a run touches nothing and fails as config.
        let cacheProblem = OwnedPath.problem(context.cachePath(mirror), directory: true)
        let swept = cacheProblem == nil ? context.cache(mirror).sweep(olderThan: lock.acquiredAt) : []
        if !swept.isEmpty {
            let note = "removed \(swept.count) file\(swept.count == 1 ? "" : "s") a killed process left in the cache (\(swept.prefix(5).joined(separator: ", "))\(swept.count > 5 ? ", …" : ""))"
            progress(mirror.name, "primary", note)
            notes.append(note)
        }

        // The secondaries are listed while the primary is: unless this is the first fetch into an empty
        // cache, whose pack may stream to empty secondaries (PackSeed) and change what they hold.
        // A large cache's refs (20,000: ~60 ms) are read while the primary is listed.
        let cacheRefs = cacheProblem == nil ? CacheRefsReader(context.cachePath(mirror)) : nil
        let prelisting = cacheRefs?.isEmpty ?? true ? nil : Prelisting(mirror, context: context)
        defer { prelisting?.waitAll() }
        var secondaries: [(report: RemoteReport, fingerprint: String?)] = []
        var repaired = false
        var seeded: [String: SeedOutcome] = [:]
        // What the fetch's worker found of the refs that moved (old tip → new): a secondary still at the
        // old tip needs no ancestry job of its own, the common case of a steady state.
        var known: [AncestryQuestion: AncestryAnswer] = [:]
        do {
            if let cacheProblem { throw SyncFailure(.config, cacheProblem) }
            var source: PrimaryRefs
            do {
                source = try fetchPrimary(mirror, report: &primary, seeded: &seeded, known: &known, cacheRefs: cacheRefs?.isEmpty ?? true ? nil : { cacheRefs!.value })
            } catch let failure as SyncFailure where SyncContext.suspectsCache(failure) {
                // The fetch reads the cache too (to negotiate): a damaged one is rebuilt, once.
                guard let note = try context.repairCache(mirror, runId: runId, suspicion: failure, held: held) else { throw failure }
                notes.append(note)
                repaired = true
                source = try fetchPrimary(mirror, report: &primary, seeded: &seeded, known: &known)
            }
            context.finished(mirror.name, "primary", "fetched")
            let untouchable = Set(primary.refs.filter { $0.outcome == .failed }.map(\.ref))
            secondaries = syncSecondaries(mirror, mirror.secondaries, source: source, seeded: seeded, known: known, primaryHead: primary.head,
                                          prelisting: repaired ? nil : prelisting, runId: runId, held: held, untouchable: untouchable)
            let suspects = secondaries.filter { $0.report.failure.map(SyncContext.suspectsCache) == true }
            if !suspects.isEmpty, !repaired, let suspicion = suspects.first?.report.failure,
               let note = try context.repairCache(mirror, runId: runId, suspicion: suspicion, held: held) {
                notes.append(note)
                source = try fetchPrimary(mirror, report: &primary, seeded: &seeded, known: &known)
                let again = syncSecondaries(mirror, mirror.secondaries.filter { spec in suspects.contains { $0.report.remote == spec.name } },
                                            source: source, seeded: seeded, known: known, primaryHead: primary.head, runId: runId, held: held,
                                            untouchable: Set(primary.refs.filter { $0.outcome == .failed }.map(\.ref)))
                secondaries = secondaries.map { entry in again.first { $0.report.remote == entry.report.remote } ?? entry }
            }
        } catch {
            primary.failure = context.redacted(error as? SyncFailure ?? SyncFailure(.internal, "\(error)"))
            primary.result = primary.failure.map(RemoteReport.Result.ending(in:)) ?? .failed
        }
        // Each fetch adds a pack: the cache is repacked, under this run's lock, once it holds too many.
        if primary.failure == nil, primary.bytes > 0, let note = maintainCache(mirror) { notes.append(note) }
        // Outcomes held back for a possible repair are recorded now, whatever became of them.
        if let runId, !options.planOnly {
            for entry in secondaries where entry.report.failure.map(SyncContext.suspectsCache) == true {
                guard let spec = mirror.secondaries.first(where: { $0.name == entry.report.remote }) else { continue }
                context.record(entry.report, runId: runId, remote: spec, fingerprint: entry.fingerprint, held: held)
            }
        }
        primary.duration = Date().timeIntervalSince(started)

        var report = RepositoryReport(repository: mirror.name, runId: runId, primary: primary, secondaries: secondaries.map(\.report),
                                      duration: Date().timeIntervalSince(started))
        if let runId {
            let result: RunResult = report.wasInterrupted || (workers.isStopping && !report.inStep) ? .interrupted
                : report.primary.failure != nil ? .failed : (report.inStep ? .ok : .failed)
            let failures = report.primary.failure?.description ?? report.secondaries.compactMap { $0.failure.map { "\($0.errorClass.rawValue)" } }.joined(separator: ", ")
            let summary = (notes + (failures.isEmpty ? [] : [failures])).joined(separator: "; ")
            let outcomes = held.take() + [context.outcome(primary, runId: runId, fingerprint: nil, held: held)].compactMap { $0 }
            finish(mirror, runId: runId, result: result, summary: summary.isEmpty ? nil : redactor.redact(summary), outcomes: outcomes, held: held)
        }
        report.journalFailures = held.journalFailures.map(redactor.redact)
        keepChangeCheck(verdict, report: &report, mirror: mirror)
        return report
    }

    // MARK: steps 4-7: the secondaries, in parallel

    /// Syncs these secondaries in parallel. Each outcome is recorded as it comes (so that `status` shows
    /// it while slower ones run; one with nothing for the journal may wait in `held` for the run's end),
    /// except one that suspects the cache: the caller may repair and re-run it.
    func syncSecondaries(_ mirror: Mirror, _ secondaries: [RemoteSpec], source: PrimaryRefs, seeded: [String: SeedOutcome] = [:],
                         known: [AncestryQuestion: AncestryAnswer] = [:], primaryHead: String? = nil, prelisting: Prelisting? = nil, runId: Int64?,
                         held: HeldOutcomes? = nil, untouchable: Set<String> = []) -> [(report: RemoteReport, fingerprint: String?)] {
        concurrently(secondaries.count, limit: config.maxParallelPushes) { index in
            let secondary = secondaries[index]
            let outcome = self.syncSecondary(mirror, secondary, source: source, seeded: seeded[secondary.name], known: known, primaryHead: primaryHead,
                                             listed: prelisting?.listing(of: secondary.name), untouchable: untouchable, runId: runId)
            if let runId, !self.options.planOnly, outcome.report.failure.map(SyncContext.suspectsCache) != true {
                context.record(outcome.report, runId: runId, remote: secondary, fingerprint: outcome.fingerprint, held: held)
            }
            return (report: outcome.report, fingerprint: outcome.fingerprint)
        }
    }

    func syncSecondary(_ mirror: Mirror, _ secondary: RemoteSpec, source: PrimaryRefs, seeded: SeedOutcome? = nil,
                       known: [AncestryQuestion: AncestryAnswer] = [:], primaryHead: String? = nil, listed: Prelisting.Pending? = nil,
                       untouchable: Set<String> = [], runId: Int64? = nil) -> (report: RemoteReport, fingerprint: String?) {
        let started = Date()
        var report = RemoteReport(repository: mirror.name, remote: secondary.name, role: .secondary, url: secondary.url.display, result: .ok)
        var work = SecondarySync(context: context, mirror: mirror, secondary: secondary, source: source.ids, report: report)
        work.sourceOrder = source.order
        work.seeded = seeded?.created ?? [:]
        work.known = known
        work.primaryHead = primaryHead
        work.listed = listed
        work.untouchable = untouchable
        work.runId = runId
        do {
            // Refused the credential when the seed asked for its refs: a push would be refused too.
            if let refusal = seeded?.refusal { throw refusal }
            try work.run()
            report = work.report
        } catch {
            report = work.report
            report.failure = context.redacted(error as? SyncFailure ?? SyncFailure(.internal, "\(error)"))
            report.result = report.failure.map(RemoteReport.Result.ending(in:)) ?? .failed
            for index in report.refs.indices where report.refs[index].outcome == .planned && report.refs[index].action.pushes {
                report.refs[index].outcome = .failed
                report.refs[index].message = report.failure?.message
            }
        }
        // A seeded secondary's work began with the fetch.
        report.duration = Date().timeIntervalSince(started) + (seeded?.created.isEmpty == false ? seeded?.seconds ?? 0 : 0)
        context.finished(mirror.name, secondary.name, report.result.rawValue)
        return (report, work.finalHeads.map(context.fingerprint))
    }

    /// The refs the cache holds (RefFiles: read from ref files, never an object, without libgit2); none
    /// when they cannot be read.
    /// On a thread of its own when they are many (CacheRefsReader).
    static func cacheRefs(_ path: String) -> [String: ObjectID] {
        guard FileManager.default.fileExists(atPath: path + "/objects") else { return [:] }
        return (try? RefFiles.read(gitDirectory: path)) ?? [:]
    }

    // MARK: a damaged cache

    /// Splits a plan's changes into pushes of at most `size` ref updates.
    static func batches(_ changes: [RefOutcome], size: Int?) -> [[RefOutcome]] {
        guard let size, size > 0, changes.count > size else { return [changes] }
        return stride(from: 0, to: changes.count, by: size).map { Array(changes[$0..<min($0 + size, changes.count)]) }
    }

    // MARK: helpers


    /// The packs past which a cache is repacked (git's gc.autoPackLimit is 50: a cache stays under it).
    public static let cachePackLimit = 40

    /// git's gc on the cache when it is past its limits. A failure fails no remote (they are in step):
    /// it is the run's note, and the next run tries again.
    func maintainCache(_ mirror: Mirror) -> String? {
        let job = MaintainJob(cache: context.cachePath(mirror), packLimit: Self.cachePackLimit, looseLimit: 6700)
        switch Result(catching: { () throws(SyncFailure) in
            try context.run(job, on: mirror.primary, repository: mirror.name, limits: context.cacheLimits(mirror.primary))
        }) {
        case .success(let result):
            if result.ran { progress(mirror.name, "primary", "repacked the cache: \(result.packsBefore) packs → \(result.packsAfter)") }
            return nil
        case .failure(let failure):
            let note = "the cache could not be repacked (the next run tries again): \(failure.message)"
            progress(mirror.name, "primary", note)
            return note
        }
    }
}
