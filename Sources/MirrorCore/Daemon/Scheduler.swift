import Foundation
import Logging

/// When each repository syncs next: once per `interval`, at its own slot in the interval, sooner on a
/// trigger, later after failures (exponential per remote, slow for failures
/// that retrying will not heal). A repository never syncs twice at once; triggers
/// during a sync coalesce into one follow-up.
///
/// A repository's slot is a fixed phase of its interval (a hash of its name), counted from the Unix
/// epoch: a fleet's runs are spread evenly across every interval, whatever bunched them once (a
/// start, a reload, an outage, a flood of hooks), and stay where they are across restarts and shards.
///
/// Time and chance come from outside (`Timing`), so the policy is tested in process with a
/// clock the test moves; the daemon passes the real ones. `run()` sleeps until the next run
/// is due or something wakes it (a trigger, a finished run, a reload, a stop): no polling.
public actor Scheduler {
    /// The clock and the source of jitter.
    public struct Timing: Sendable {
        public var now: @Sendable () -> Date
        /// A number in the range, for the spread of first runs.
        public var random: @Sendable (Range<Double>) -> Double
        /// Where in its interval a repository's slot is, in 0..<1.
        public var phase: @Sendable (String) -> Double

        public init(now: @escaping @Sendable () -> Date, random: @escaping @Sendable (Range<Double>) -> Double,
                    phase: @escaping @Sendable (String) -> Double = Timing.phase(of:)) {
            self.now = now
            self.random = random
            self.phase = phase
        }

        public static let system = Timing(now: { Date() }, random: { Double.random(in: $0) })

        /// The name's stable hash as a fraction, the same in every process and version, mixed with
        /// MurmurHash3's finalizer so that names differing only at the end (`repo-1`, `repo-2`) land far apart.
        public static func phase(of name: String) -> Double {
            var hash = stableHash(name)
            hash ^= hash >> 33
            hash = hash &* 0xff51_afd7_ed55_8ccd
            hash ^= hash >> 33
            hash = hash &* 0xc4ce_b9fe_1a85_ec53
            hash ^= hash >> 33
            return Double(hash >> 11) / Double(1 << 53)
        }
    }

    /// The repository's next slot: the first point of its phase at least half an interval after `now`
    /// (so a run a hook started just before its slot does not run again at once).
    static func slot(after now: Date, interval: TimeInterval, phase: Double) -> Date {
        let offset = phase * interval
        let cycles = ((now.timeIntervalSince1970 + interval / 2 - offset) / interval).rounded(.up)
        return Date(timeIntervalSince1970: cycles * interval + offset)
    }

    struct Entry {
        var mirror: Mirror
        var nextRun: Date
        var running = false
        /// What asked for a follow-up run during this one (a forge's hook, the sync API).
        var queued: String?
        /// What asked for the next run, when it was not the schedule.
        var triggered: String?
        /// Consecutive failures per remote, and the class of the last one.
        var failures: [String: (count: Int, errorClass: ErrorClass)] = [:]
        var note: String?
    }

    private var entries: [String: Entry]
    private var settings: DaemonSettings
    private var stopping = false
    private var firstPassDone = false
    private let timing: Timing
    private let runner: @Sendable (Mirror, String) async -> RepositoryReport
    private let onFinished: @Sendable (RepositoryReport) async -> Void
    private let onSchedule: @Sendable (ScheduleEntry) -> Void
    private let onPass: @Sendable (PassRecord) -> Void
    private let onOverdue: @Sendable (Int) -> Void
    /// The pass under way: since when, and the repositories that have not finished a run in it.
    private var passStarted: Date
    private var passPending: Set<String>
    private var lastOverdue = 0
    private let logger: Logger
    /// The sleeping `run()`, and the timer that will wake it.
    private var sleeper: CheckedContinuation<Void, Never>?
    private var alarm: Task<Void, Never>?
    /// The runs started by this scheduler, and who waits for them all to end (`drain`).
    private var inFlight: [String: Task<Void, Never>] = [:]
    private var drainers: [Int: CheckedContinuation<Bool, Never>] = [:]
    private var nextDrainer = 0

    /// `startNow`: repositories whose last run was interrupted (a restart): they run at once, without jitter.
    public init(config: Config, logger: Logger, startNow: Set<String> = [], timing: Timing = .system,
                runner: @escaping @Sendable (Mirror, String) async -> RepositoryReport,
                onFinished: @escaping @Sendable (RepositoryReport) async -> Void,
                onSchedule: @escaping @Sendable (ScheduleEntry) -> Void,
                onPass: @escaping @Sendable (PassRecord) -> Void = { _ in }, onOverdue: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.settings = config.daemon
        self.onPass = onPass
        self.onOverdue = onOverdue
        self.timing = timing
        self.runner = runner
        self.onFinished = onFinished
        self.onSchedule = onSchedule
        self.logger = logger
        let now = timing.now()
        var initial: [String: Entry] = [:]
        for mirror in config.repositories {
            let delay = startNow.contains(mirror.name) ? 0 : Self.firstRunDelay(mirror, config.daemon, timing)
            initial[mirror.name] = Entry(mirror: mirror, nextRun: now.addingTimeInterval(delay))
        }
        self.entries = initial
        passStarted = now
        passPending = Set(initial.keys)
    }

    /// A repository is overdue when its run was due more than a tenth of its interval ago (at least
    /// 30 s) and has not started: the fleet needs more than the limits allow (or no daemon runs).
    public static func isOverdue(nextRun: Date, interval: TimeInterval, now: Date) -> Bool {
        nextRun < now.addingTimeInterval(-max(30, interval * 0.1))
    }

    /// How many repositories are overdue now.
    public var overdueCount: Int {
        let now = timing.now()
        return entries.values.filter { !$0.running && Self.isOverdue(nextRun: $0.nextRun, interval: interval($0.mirror, settings), now: now) }.count
    }

    /// A pass ends when every repository scheduled when it began (and still configured) has finished a run.
    private func passProgress(finished name: String?, now: Date) {
        if let name { passPending.remove(name) }
        guard passPending.isEmpty, !entries.isEmpty else { return }
        onPass(PassRecord(source: "daemon", startedAt: passStarted, finishedAt: now, repositories: entries.count))
        passStarted = now
        passPending = Set(entries.keys)
    }

    public var isReady: Bool { firstPassDone }
    /// Asked to stop: nothing new starts.
    public var isStopping: Bool { stopping }
    public var repositoryNames: [String] { entries.keys.sorted() }

    /// The first runs spread over `start_spread`: by default a tenth of the interval, at most 30 s.
    static func firstRunDelay(_ mirror: Mirror, _ settings: DaemonSettings, _ timing: Timing) -> TimeInterval {
        let spread = settings.startSpread ?? min((mirror.interval ?? settings.interval) * 0.1, 30)
        return spread > 0 ? timing.random(0..<spread) : 0
    }

    nonisolated func interval(_ mirror: Mirror, _ settings: DaemonSettings) -> TimeInterval { mirror.interval ?? settings.interval }

    /// A new configuration: new repositories are scheduled, removed ones stop (their cache and history stay).
    public func update(_ config: Config) {
        settings = config.daemon
        let names = Set(config.repositories.map(\.name))
        for name in entries.keys where !names.contains(name) {
            entries[name] = nil
            passPending.remove(name)
            logger.info("repository removed from the configuration; no longer scheduled", metadata: ["repository": "\(name)"])
        }
        let now = timing.now()
        passProgress(finished: nil, now: now)
        for mirror in config.repositories {
            if entries[mirror.name] != nil {
                entries[mirror.name]?.mirror = mirror
            } else {
                entries[mirror.name] = Entry(mirror: mirror, nextRun: now.addingTimeInterval(Self.firstRunDelay(mirror, settings, timing)))
            }
        }
        wake()
    }

    /// A webhook or an API call asks for a sync now; `source` is recorded as the run's trigger
    /// (`github`, `gitlab`, `gitea`, `api`). False when the repository is unknown.
    public func trigger(_ name: String, by source: String) -> Bool {
        guard entries[name] != nil else { return false }
        if entries[name]!.running {
            entries[name]!.queued = source
        } else {
            entries[name]!.nextRun = timing.now()
            entries[name]!.triggered = source
        }
        publish(name)
        wake()
        return true
    }

    /// The repositories whose primary is at `url` (a webhook names the repository by its URLs).
    public static func repositories(_ mirrors: [Mirror], matching urls: [String]) -> [String] {
        let identities = Set(urls.compactMap { try? RemoteURL.parse($0, relativeTo: URL(fileURLWithPath: "/")).identity })
        return mirrors.filter { identities.contains($0.primary.url.identity) }.map(\.name).sorted()
    }

    /// Runs until asked to stop (or cancelled): starts what is due, then sleeps until the next
    /// run is due or something changes. Running syncs are left to finish: see `drain`.
    /// `onFirstPass` is called once the first pass has started what was due (the daemon is ready then).
    public func run(onFirstPass: @Sendable () async -> Void = {}) async {
        await withTaskCancellationHandler {
            while !stopping && !Task.isCancelled {
                startDueRuns()
                if !firstPassDone {
                    firstPassDone = true
                    for name in entries.keys { publish(name) }
                    await onFirstPass()
                }
                await sleepUntilNextDue()
            }
        } onCancel: {
            Task { await self.stop() }
        }
    }

    public func stop() {
        stopping = true
        wake()
    }

    public var runningCount: Int { entries.values.filter(\.running).count }

    /// Waits up to `seconds` (nil: as long as it takes) for the running syncs; true when none is left.
    public func drain(within seconds: TimeInterval?) async -> Bool {
        guard !inFlight.isEmpty else { return true }
        guard seconds.map({ $0 > 0 }) ?? true else { return false }
        let id = nextDrainer
        nextDrainer += 1
        return await withCheckedContinuation { continuation in
            drainers[id] = continuation
            if let seconds {
                Task {
                    try? await Task.sleep(for: .seconds(seconds))
                    self.drainerTimedOut(id)
                }
            }
        }
    }

    private func drainerTimedOut(_ id: Int) {
        drainers.removeValue(forKey: id)?.resume(returning: false)
    }

    /// Starts every run that is due, within `max_connections` (a run waits for its connections, and for a
    /// transfer slot in `max_parallel_repositories` only when it fetches or pushes). Tests call it after moving their clock.
    func startDueRuns() {
        guard !stopping else { return }
        let now = timing.now()
        var running = entries.values.filter(\.running).count
        let due = entries.values.filter { !$0.running && $0.nextRun <= now }.sorted { $0.nextRun < $1.nextRun }
        // What is still due after this round waits for a slot: overdue once it waited too long. The loop
        // comes back here whenever a run ends, so the count never goes stale while runs wait.
        let overdue = due.dropFirst(max(settings.maxConnections - running, 0))
            .filter { Self.isOverdue(nextRun: $0.nextRun, interval: interval($0.mirror, settings), now: now) }.count
        if overdue != lastOverdue {
            lastOverdue = overdue
            onOverdue(overdue)
        }
        for entry in due where running < settings.maxConnections {
            let name = entry.mirror.name
            let trigger = entry.triggered ?? "schedule"
            entries[name]!.running = true
            entries[name]!.triggered = nil
            running += 1
            publish(name)
            let mirror = entry.mirror
            inFlight[name] = Task {
                let report = await runner(mirror, trigger)
                await finished(name, report)
            }
        }
    }

    /// What changed while `run()` was away from the actor (a stop, a trigger, a finished run) is
    /// seen here, because nothing suspends between this look and the sleep.
    private func sleepUntilNextDue() async {
        guard !stopping else { return }
        let now = timing.now()
        let waiting = entries.values.filter { !$0.running }.map(\.nextRun)
        // Nothing waiting (all running, or none at all), or as many running as allowed (what is due
        // waits for a slot): a finished run, a trigger, a reload or a stop wakes us, not the clock.
        let atCapacity = entries.values.filter(\.running).count >= settings.maxConnections
        let delay = atCapacity ? nil : waiting.min().map { max($0.timeIntervalSince(now), 0.001) }
        await withCheckedContinuation { continuation in
            sleeper = continuation
            if let delay {
                alarm = Task { [weak self] in
                    try? await Task.sleep(for: .seconds(delay))
                    guard !Task.isCancelled else { return }
                    await self?.wake()
                }
            }
        }
    }

    private func wake() {
        alarm?.cancel()
        alarm = nil
        sleeper?.resume()
        sleeper = nil
    }

    func finished(_ name: String, _ report: RepositoryReport) async {
        inFlight[name] = nil
        defer {
            if inFlight.isEmpty {
                for drainer in drainers.values { drainer.resume(returning: true) }
                drainers = [:]
            }
        }
        guard var entry = entries[name] else { return }
        entry.running = false
        let now = timing.now()
        // A run a shutdown interrupted checked nothing: the pass is not over for it.
        if !report.wasInterrupted { passProgress(finished: name, now: now) }
        // Per remote: a streak of failures grows its delay; a success resets it.
        for remote in [report.primary] + report.secondaries where remote.result != .interrupted {
            if let failure = remote.failure, failure.errorClass != .diverged {
                let previous = entry.failures[remote.remote]?.count ?? 0
                entry.failures[remote.remote] = (previous + 1, failure.errorClass)
            } else {
                entry.failures[remote.remote] = nil
            }
        }
        let regular = Self.slot(after: now, interval: interval(entry.mirror, settings), phase: timing.phase(name))
        if let source = entry.queued {
            entry.queued = nil
            entry.triggered = source
            entry.nextRun = now
            entry.note = "queued by a trigger during the last run"
        } else if entry.failures.isEmpty {
            entry.nextRun = regular
            entry.note = nil
        } else {
            let delays = entry.failures.map { remote, failure -> (TimeInterval, String) in
                if !failure.errorClass.healsWithRetry {
                    return (settings.retryCap, "retrying slowly: \(remote) fails with \(failure.errorClass.rawValue), which retrying will not fix")
                }
                let delay = min(settings.retryBase * pow(2, Double(failure.count - 1)), settings.retryCap)
                return (delay, "backing off after \(failure.count) failure\(failure.count == 1 ? "" : "s") of \(remote) (\(failure.errorClass.rawValue))")
            }
            let chosen = delays.min { $0.0 < $1.0 }!
            entry.nextRun = now.addingTimeInterval(chosen.0)
            entry.note = chosen.1
        }
        entries[name] = entry
        publish(name)
        wake()
        await onFinished(report)
    }

    private func publish(_ name: String) {
        guard let entry = entries[name] else { return }
        let state = entry.running ? (entry.queued != nil ? "running, one queued" : "running") : "idle"
        onSchedule(ScheduleEntry(repository: name, nextRun: entry.running ? nil : entry.nextRun, state: state, note: entry.note,
                                 updatedAt: timing.now()))
    }

    /// When the scheduler will run a repository next, and why: for tests and status.
    public func nextRun(of name: String) -> Date? { entries[name]?.nextRun }
    public func note(of name: String) -> String? { entries[name]?.note }
}
