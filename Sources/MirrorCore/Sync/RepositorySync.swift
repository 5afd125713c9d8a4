import Foundation
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
    public let supervisor: WorkerSupervisor
    public let credentials: CredentialResolver
    public let options: Options
    /// Bounds connections per host across every sync of the process (the daemon's).
    public let hostLimiter: HostLimiter?
    public let progress: @Sendable (_ repository: String, _ remote: String, _ message: String) -> Void

    public init(config: Config, store: StateStore?, supervisor: WorkerSupervisor, credentials: CredentialResolver,
                options: Options = Options(), hostLimiter: HostLimiter? = nil,
                progress: @escaping @Sendable (String, String, String) -> Void = { _, _, _ in }) {
        self.config = config
        self.store = store
        self.supervisor = supervisor
        self.credentials = credentials
        self.options = options
        self.hostLimiter = hostLimiter
        self.progress = progress
    }

    var redactor: Redactor { credentials.redactor }

    func cachePath(_ mirror: Mirror) -> String { config.cacheDirectory.appendingPathComponent("\(mirror.name).git").path }

    public func run(_ mirror: Mirror) -> RepositoryReport {
        let started = Date()
        var primary = RemoteReport(repository: mirror.name, remote: "primary", role: .primary, url: mirror.primary.url.gitURL, result: .ok)
        let stopping = { supervisor.registry?.isStopping == true }
        if stopping() {
            primary.result = .failed
            primary.failure = SyncFailure(.timeout, "interrupted: gitmirror is shutting down; this repository was not started")
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
                primary.result = .failed
                primary.failure = SyncFailure(.timeout, "interrupted while waiting for another gitmirror's lock on '\(mirror.name)'; nothing was done")
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
        defer {
            if !options.planOnly { try? store?.releaseLease(repository: mirror.name) }
            lock.release()
        }

        var runId: Int64?
        if !options.planOnly, let store {
            do {
                if let previous = try store.takeLease(repository: mirror.name), previous.pid != getpid() {
                    progress(mirror.name, "primary", "took over the lease left by pid \(previous.pid) on \(previous.host), which no longer holds the lock")
                }
                runId = try store.recordRunStarted(repository: mirror.name, trigger: options.trigger)
            } catch {
                primary.result = .failed
                primary.failure = SyncFailure(.internal, "cannot write the state database \(config.databaseURL.path): \(error)")
                return RepositoryReport(repository: mirror.name, runId: nil, primary: primary, secondaries: [], duration: Date().timeIntervalSince(started))
            }
        }

        var secondaries: [RemoteReport] = []
        do {
            let source = try fetchPrimary(mirror, report: &primary)
            secondaries = syncSecondaries(mirror, source: source, runId: runId)
        } catch {
            primary.result = .failed
            primary.failure = redacted(error as? SyncFailure ?? SyncFailure(.internal, "\(error)"))
        }
        primary.duration = Date().timeIntervalSince(started)

        let report = RepositoryReport(repository: mirror.name, runId: runId, primary: primary, secondaries: secondaries,
                                      duration: Date().timeIntervalSince(started))
        if let runId, let store {
            record(primary, runId: runId, remote: mirror.primary, fingerprint: nil)
            let result = supervisor.registry?.isStopping == true && !report.inStep ? "interrupted"
                : report.primary.failure != nil ? "failed" : (report.inStep ? "ok" : "failed")
            let summary = report.primary.failure?.description ?? secondaries.compactMap { $0.failure.map { "\($0.errorClass.rawValue)" } }.joined(separator: ", ")
            try? store.recordRunFinished(id: runId, result: result, summary: summary.isEmpty ? nil : redactor.redact(summary))
        }
        return report
    }

    // MARK: steps 2 and 3: the primary

    /// Lists the primary, fetches what changed into the cache, and returns the
    /// primary's refs as the cache now holds them.
    func fetchPrimary(_ mirror: Mirror, report: inout RemoteReport) throws -> [String: ObjectID] {
        var listing = WorkerRequest(operation: .list, url: "")
        try credentials.prepare(&listing, for: mirror.primary, config: config)
        let limits = WorkerSupervisor.Limits(timeout: mirror.primary.policy.timeout, stall: mirror.primary.policy.stallTimeout)
        progress(mirror.name, "primary", "listing refs")
        let heads = try worker(listing, limits: limits, remote: mirror.primary, repository: mirror.name).heads

        let patterns = Array(Set(mirror.secondaries.flatMap(\.policy.refs))).sorted()
        let wanted = Dictionary(heads.filter { RefFilter.matches($0.name, patterns) }.map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
        // An empty primary is an outage or an accident, never an instruction to delete everything.
        guard !heads.filter({ $0.name.hasPrefix("refs/") }).isEmpty else {
            throw SyncFailure(.primaryEmpty, "the primary \(mirror.primary.url) advertises no refs; nothing was fetched, pushed or deleted anywhere. Check that the primary repository is intact")
        }

        let cachePath = self.cachePath(mirror)
        var cache = try gitCall { try Repository.openOrCreateBare(at: cachePath) }
        let cached = try gitCall { try cache.references(matching: "refs/*") }.filter { !$0.key.hasPrefix("refs/gitmirror/") }
        let missing = wanted.filter { cached[$0.key] != $0.value }.keys.sorted()
        if !missing.isEmpty {
            progress(mirror.name, "primary", "fetching \(missing.count) ref\(missing.count == 1 ? "" : "s")")
            var fetch = listing
            fetch.operation = .fetch
            fetch.cachePath = cachePath
            fetch.refspecs = missing.map { "+\($0):\($0)" }
            let result = try worker(fetch, limits: limits, remote: mirror.primary, repository: mirror.name)
            report.bytes = result.bytes
            cache = try gitCall { try Repository.openBare(at: cachePath) }
        }
        var source: [String: ObjectID] = [:]
        let now = try gitCall { try cache.references(matching: "refs/*") }
        for name in wanted.keys {
            guard let id = now[name] else {
                throw SyncFailure(.internal, "the fetch from the primary did not bring \(name); nothing was pushed")
            }
            source[name] = id
        }
        // Refs the primary no longer has leave the cache too (their objects stay).
        for name in now.keys where !name.hasPrefix("refs/gitmirror/") && wanted[name] == nil {
            try? cache.deleteReference(name)
        }
        return source
    }

    // MARK: steps 4-7: the secondaries, in parallel

    func syncSecondaries(_ mirror: Mirror, source: [String: ObjectID], runId: Int64?) -> [RemoteReport] {
        let results = LockedArray<RemoteReport>(count: mirror.secondaries.count)
        let limit = DispatchSemaphore(value: config.maxParallelPushes)
        let group = DispatchGroup()
        for (index, secondary) in mirror.secondaries.enumerated() {
            limit.wait()
            group.enter()
            Thread.detachNewThread {
                let report = self.syncSecondary(mirror, secondary, source: source, runId: runId)
                results.set(index, report)
                limit.signal()
                group.leave()
            }
        }
        group.wait()
        return results.values.compactMap { $0 }
    }

    func syncSecondary(_ mirror: Mirror, _ secondary: RemoteSpec, source: [String: ObjectID], runId: Int64?) -> RemoteReport {
        let started = Date()
        var report = RemoteReport(repository: mirror.name, remote: secondary.name, role: .secondary, url: secondary.url.gitURL, result: .ok)
        var finalHeads: [RemoteHead]?
        do {
            try push(mirror, secondary, source: source, report: &report, finalHeads: &finalHeads)
        } catch {
            report.failure = redacted(error as? SyncFailure ?? SyncFailure(.internal, "\(error)"))
            report.result = .failed
            for index in report.refs.indices where report.refs[index].outcome == .planned && report.refs[index].action.pushes {
                report.refs[index].outcome = .failed
                report.refs[index].message = report.failure?.message
            }
        }
        report.duration = Date().timeIntervalSince(started)
        if let runId, !options.planOnly {
            record(report, runId: runId, remote: secondary, fingerprint: finalHeads.map(fingerprint))
        }
        progress(mirror.name, secondary.name, "done: \(report.result.rawValue)")
        return report
    }

    func push(_ mirror: Mirror, _ secondary: RemoteSpec, source: [String: ObjectID], report: inout RemoteReport, finalHeads: inout [RemoteHead]?) throws {
        let limits = WorkerSupervisor.Limits(timeout: secondary.policy.timeout, stall: secondary.policy.stallTimeout)
        var listing = WorkerRequest(operation: .list, url: "")
        try credentials.prepare(&listing, for: secondary, config: config)
        progress(mirror.name, secondary.name, "listing refs")
        let heads: [RemoteHead]
        do {
            heads = try worker(listing, limits: limits, remote: secondary, repository: mirror.name).heads
        } catch let failure as SyncFailure where failure.errorClass == .notFound && secondary.create && !options.planOnly {
            try createRepository(secondary, repository: mirror.name)
            heads = try worker(listing, limits: limits, remote: secondary, repository: mirror.name).heads
        }
        let target = Dictionary(heads.filter { $0.name.hasPrefix("refs/") }.map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })

        let cachePath = self.cachePath(mirror)
        let cache = try gitCall { try Repository.openBare(at: cachePath) }
        let plan = RefPlan.make(source: source, target: target, policy: secondary.policy) { old, new in
            ((try? cache.contains(old)) ?? false) && ((try? cache.isDescendant(new, of: old)) ?? false)
        }
        report.skipped = plan.count(.skip)
        report.upToDate = plan.count(.upToDate)
        report.refs = plan.refs.filter { $0.action != .skip && $0.action != .upToDate }.map { planned in
            RefOutcome(ref: planned.ref, action: planned.action, old: planned.old, new: planned.new,
                       outcome: planned.action.pushes ? .planned : .kept, message: planned.reason, backupRef: nil)
        }
        if options.planOnly {
            report.result = .planned
            return
        }

        // Whatever is overwritten or deleted is kept first, in the cache.
        let stamp = Self.backupStamp()
        for index in report.refs.indices where report.refs[index].action == .force || report.refs[index].action == .delete {
            let ref = report.refs[index]
            guard let old = ref.old else { continue }
            let backup = "refs/gitmirror/backup/\(secondary.name)/\(ref.ref)@\(stamp)"
            do {
                if try !gitCall({ try cache.contains(old) }) {
                    var fetch = listing
                    fetch.operation = .fetch
                    fetch.cachePath = cachePath
                    fetch.refspecs = ["+\(ref.ref):\(backup)"]
                    progress(mirror.name, secondary.name, "backing up \(ref.ref)")
                    _ = try worker(fetch, limits: limits, remote: secondary, repository: mirror.name)
                }
                let reopened = try gitCall { try Repository.openBare(at: cachePath) }
                if try gitCall({ try reopened.reference(named: backup) }) != old {
                    try gitCall { try reopened.setReference(backup, to: old, message: "gitmirror: backup of \(secondary.name) \(ref.ref)") }
                }
                report.refs[index].backupRef = backup
            } catch {
                let failure = error as? SyncFailure ?? SyncFailure(.internal, "\(error)")
                report.refs[index].outcome = .failed
                report.refs[index].message = "not overwritten: its old tip could not be backed up (\(failure.message))"
            }
        }

        // Refs the host is known to refuse are reported now, not sent.
        let forge = Forge.of(secondary.url)
        for index in report.refs.indices where report.refs[index].outcome == .planned {
            if let refusal = forge.refusal(of: report.refs[index].ref) {
                report.refs[index].outcome = .rejected
                report.refs[index].message = refusal
            }
        }
        let changes = report.refs.filter { $0.outcome == .planned }
        if !changes.isEmpty {
            var final: [String: ObjectID] = [:]
            var verdicts: [String: PushOutcome] = [:]
            var serverMessages: [String] = []
            // Hosts with a cap on ref updates per push (CodeCommit: 4,000) get the plan in batches.
            for batch in Self.batches(changes, size: forge.maxRefUpdatesPerPush) {
                var request = listing
                request.operation = .push
                request.cachePath = cachePath
                request.updates = batch.map { WireUpdate(ref: $0.ref, expectedOld: $0.old, new: $0.action == .delete ? nil : $0.new, force: $0.action == .force) }
                progress(mirror.name, secondary.name, "pushing \(batch.count) ref\(batch.count == 1 ? "" : "s")")
                let result = try worker(request, limits: limits, remote: secondary, repository: mirror.name)
                report.bytes += result.bytes
                finalHeads = result.heads
                final = Dictionary(result.heads.map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
                for outcome in result.outcomes { verdicts[outcome.ref] = outcome }
                serverMessages += result.serverMessages
            }
            let serverSaid = serverMessages.suffix(5).joined(separator: " | ")
            for index in report.refs.indices where report.refs[index].outcome == .planned {
                let ref = report.refs[index]
                let expected = ref.action == .delete ? nil : ref.new
                if let verdict = verdicts[ref.ref], !verdict.accepted {
                    report.refs[index].outcome = .rejected
                    let reason = verdict.message ?? "rejected"
                    report.refs[index].message = redactor.redact(serverSaid.isEmpty || reason.contains("moved on the server") ? reason : "\(reason) (server said: \(serverSaid))")
                } else if final[ref.ref] != expected {
                    report.refs[index].outcome = .failed
                    let holds = final[ref.ref].map { "holds \($0.short)" } ?? "does not have it"
                    report.refs[index].message = "the server reported success but \(holds) after the push (expected \(expected?.short ?? "it deleted"))"
                } else {
                    report.refs[index].outcome = .applied
                }
            }
        } else {
            finalHeads = heads
        }

        let rejected = report.refs.filter { $0.outcome == .rejected || $0.outcome == .failed }
        let diverged = report.refs.filter { $0.action == .diverged }
        if !rejected.isEmpty {
            let list = rejected.prefix(5).map { "\($0.ref) (\($0.message ?? "rejected"))" }.joined(separator: "; ")
            // The most telling rejection decides the class, and its advice goes first.
            let verdicts = rejected.map { Forge.classify(rejection: $0.message ?? "") }
            let chosen = verdicts.first { $0.0 != .rejected } ?? (.rejected, nil)
            report.failure = SyncFailure(chosen.0, (chosen.1.map { "\($0). " } ?? "")
                                         + "\(rejected.count) ref\(rejected.count == 1 ? "" : "s") not updated: \(list)\(rejected.count > 5 ? "; …" : "")")
            report.result = .failed
        } else if plan.deletionsOverCap > 0 {
            report.failure = SyncFailure(.protected, "\(plan.deletionsOverCap) refs were deleted on the primary, more than max_deletes (\(secondary.policy.maxDeletes)) allows; none was deleted. If that is intended, raise max_deletes for '\(secondary.name)' and sync again")
            report.result = .failed
        } else if !diverged.isEmpty {
            let list = diverged.prefix(5).map(\.ref).joined(separator: ", ")
            report.failure = SyncFailure(.diverged, "\(diverged.count) ref\(diverged.count == 1 ? "" : "s") diverged on '\(secondary.name)' and kept: \(list)\(diverged.count > 5 ? ", …" : ""). Inspect them, then either delete them on the secondary or set force: true (the old tips are kept as backup refs)")
            report.result = .diverged
        } else {
            report.result = changes.isEmpty ? .upToDate : .ok
        }
    }

    /// Splits a plan's changes into pushes of at most `size` ref updates.
    static func batches(_ changes: [RefOutcome], size: Int?) -> [[RefOutcome]] {
        guard let size, size > 0, changes.count > size else { return [changes] }
        return stride(from: 0, to: changes.count, by: size).map { Array(changes[$0..<min($0 + size, changes.count)]) }
    }

    /// `create: true`: a missing CodeCommit repository is created through the API, then listed again.
    func createRepository(_ secondary: RemoteSpec, repository: String) throws {
        guard let target = secondary.url.codeCommit else { return }
        var spec = secondary.credentialName.flatMap { config.credentials[$0]?.aws } ?? AWSCredentialSpec()
        if spec.profile == nil { spec.profile = target.profile }
        let keys = try credentials.awsCredentials(spec, name: secondary.credentialName ?? "aws-default-chain", region: target.region)
        let api = CodeCommitAPI(region: target.region, credentials: keys, environment: credentials.environment)
        do {
            if try !api.repositoryExists(target.repository) {
                progress(repository, secondary.name, "creating CodeCommit repository \(target.repository) in \(target.region)")
                try api.createRepository(target.repository)
            }
        } catch {
            throw redacted(SyncFailure(error.errorClass, "secondary '\(secondary.name)': \(error.message)"))
        }
    }

    // MARK: helpers

    func worker(_ request: WorkerRequest, limits: WorkerSupervisor.Limits, remote: RemoteSpec, repository: String) throws -> WorkerResult {
        let run = {
            supervisor.run(request, limits: limits) { line in
                progress(repository, remote.name, line)
            }
        }
        let result = hostLimiter.map { $0.withSlot(remote.url.host ?? "local", run) } ?? run()
        switch result {
        case .success(let value): return value
        case .failure(let failure):
            throw redacted(SyncFailure(failure.errorClass, "\(remote.role == .primary ? "primary" : "secondary '\(remote.name)'") \(remote.url): \(failure.message)"))
        }
    }

    func gitCall<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as GitError {
            throw SyncFailure(.internal, "the cache: \(error.description)")
        }
    }

    func redacted(_ failure: SyncFailure) -> SyncFailure {
        SyncFailure(failure.errorClass, redactor.redact(failure.message))
    }

    static func backupStamp() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: Date())
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

    func record(_ report: RemoteReport, runId: Int64, remote: RemoteSpec, fingerprint: String?) {
        guard let store else { return }
        let now = Date()
        let state: String
        switch report.result {
        case .ok, .upToDate, .planned: state = "ok"
        case .diverged: state = "diverged"
        case .failed: state = "failing"
        }
        let row = RemoteState(repository: report.repository, remote: report.remote, role: report.role.rawValue, url: redactor.redact(report.url),
                              state: state, lastAttempt: now, lastSuccess: report.failure == nil ? now : nil,
                              lastErrorClass: report.failure?.errorClass.rawValue, lastError: report.failure.map { redactor.redact($0.message) },
                              refsFingerprint: fingerprint, lastRunId: runId)
        let refs = report.refs.map { ref in
            RefUpdate(id: nil, runId: runId, repository: report.repository, remote: report.remote, ref: ref.ref,
                      oldOid: ref.old?.hex, newOid: ref.new?.hex, action: ref.action.rawValue, outcome: ref.outcome.rawValue,
                      message: ref.message.map(redactor.redact), backupRef: ref.backupRef, recordedAt: now)
        }
        do {
            try store.recordRemoteOutcome(row, refs: refs)
        } catch {
            progress(report.repository, report.remote, "could not record the outcome in SQLite: \(error)")
        }
    }
}

/// Results written by worker threads, read once they are all done.
final class LockedArray<Element>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Element?]

    init(count: Int) { storage = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: Element) {
        lock.lock()
        storage[index] = value
        lock.unlock()
    }

    var values: [Element?] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}
