import Foundation
import Logging

/// When each repository syncs next: every `interval` with jitter, sooner on a
/// trigger, later after failures (exponential per remote, slow for failures
/// that retrying will not heal). A repository never syncs twice at once; triggers
/// during a sync coalesce into one follow-up.
public actor Scheduler {
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

    /// Failures that retrying does not heal: retried slowly.
    static let lasting: Set<ErrorClass> = [.auth, .hostKey, .config, .notFound, .readOnly]

    private var entries: [String: Entry]
    private var settings: DaemonSettings
    private var stopping = false
    private var firstPassDone = false
    private let runner: @Sendable (Mirror, String) async -> RepositoryReport
    private let onFinished: @Sendable (RepositoryReport) async -> Void
    private let onSchedule: @Sendable (ScheduleEntry) -> Void
    private let logger: Logger

    /// `startNow`: repositories whose last run was interrupted (a restart): they run at once, without jitter.
    public init(config: Config, logger: Logger, startNow: Set<String> = [],
                runner: @escaping @Sendable (Mirror, String) async -> RepositoryReport,
                onFinished: @escaping @Sendable (RepositoryReport) async -> Void,
                onSchedule: @escaping @Sendable (ScheduleEntry) -> Void) {
        self.settings = config.daemon
        self.runner = runner
        self.onFinished = onFinished
        self.onSchedule = onSchedule
        self.logger = logger
        let now = Date()
        var initial: [String: Entry] = [:]
        for mirror in config.repositories {
            let every = mirror.interval ?? config.daemon.interval
            let delay = startNow.contains(mirror.name) ? 0 : Self.initialJitter(every)
            initial[mirror.name] = Entry(mirror: mirror, nextRun: now.addingTimeInterval(delay))
        }
        self.entries = initial
    }

    public var isReady: Bool { firstPassDone }
    public var repositoryNames: [String] { entries.keys.sorted() }

    /// The first runs spread over a tenth of the interval (at most 30 s).
    static func initialJitter(_ interval: TimeInterval) -> TimeInterval {
        Double.random(in: 0..<max(min(interval * 0.1, 30), 0.001))
    }

    nonisolated func interval(_ mirror: Mirror, _ settings: DaemonSettings) -> TimeInterval { mirror.interval ?? settings.interval }

    /// A new configuration: new repositories are scheduled, removed ones stop (their cache and history stay).
    public func update(_ config: Config) {
        settings = config.daemon
        let names = Set(config.repositories.map(\.name))
        for name in entries.keys where !names.contains(name) {
            entries[name] = nil
            logger.info("repository removed from the configuration; no longer scheduled", metadata: ["repository": "\(name)"])
        }
        let now = Date()
        for mirror in config.repositories {
            if entries[mirror.name] != nil {
                entries[mirror.name]?.mirror = mirror
            } else {
                entries[mirror.name] = Entry(mirror: mirror, nextRun: now.addingTimeInterval(Self.initialJitter(interval(mirror, settings))))
            }
        }
    }

    /// A webhook or an API call asks for a sync now; `source` is recorded as the run's trigger
    /// (`github`, `gitlab`, `gitea`, `api`). False when the repository is unknown.
    public func trigger(_ name: String, by source: String) -> Bool {
        guard entries[name] != nil else { return false }
        if entries[name]!.running {
            entries[name]!.queued = source
        } else {
            entries[name]!.nextRun = Date()
            entries[name]!.triggered = source
        }
        publish(name)
        return true
    }

    /// The repositories whose primary is at `url` (a webhook names the repository by its URLs).
    public static func repositories(_ mirrors: [Mirror], matching urls: [String]) -> [String] {
        let identities = Set(urls.compactMap { try? RemoteURL.parse($0, relativeTo: URL(fileURLWithPath: "/")).identity })
        return mirrors.filter { identities.contains($0.primary.url.identity) }.map(\.name).sorted()
    }

    /// Runs until asked to stop; then lets running syncs finish.
    public func run() async {
        var reported = false
        while !stopping && !Task.isCancelled {
            startDueRuns()
            if !reported {
                firstPassDone = true
                reported = true
                for name in entries.keys { publish(name) }
            }
            try? await Task.sleep(nanoseconds: 200_000_000)
        }
    }

    public func stop() { stopping = true }

    public var runningCount: Int { entries.values.filter(\.running).count }

    private func startDueRuns() {
        let now = Date()
        var running = entries.values.filter(\.running).count
        let due = entries.values.filter { !$0.running && $0.nextRun <= now }.sorted { $0.nextRun < $1.nextRun }
        for entry in due where running < settings.maxParallelRepositories {
            let name = entry.mirror.name
            let trigger = entry.triggered ?? "schedule"
            entries[name]!.running = true
            entries[name]!.triggered = nil
            running += 1
            publish(name)
            let mirror = entry.mirror
            Task {
                let report = await runner(mirror, trigger)
                await finished(name, report)
            }
        }
    }

    private func finished(_ name: String, _ report: RepositoryReport) async {
        guard var entry = entries[name] else { return }
        entry.running = false
        let now = Date()
        // Per remote: a streak of failures grows its delay; a success resets it.
        for remote in [report.primary] + report.secondaries where remote.result != .interrupted {
            if let failure = remote.failure, failure.errorClass != .diverged {
                let previous = entry.failures[remote.remote]?.count ?? 0
                entry.failures[remote.remote] = (previous + 1, failure.errorClass)
            } else {
                entry.failures[remote.remote] = nil
            }
        }
        let regular = interval(entry.mirror, settings) * Double.random(in: 0.9...1.1)
        if let source = entry.queued {
            entry.queued = nil
            entry.triggered = source
            entry.nextRun = now
            entry.note = "queued by a trigger during the last run"
        } else if entry.failures.isEmpty {
            entry.nextRun = now.addingTimeInterval(regular)
            entry.note = nil
        } else {
            let delays = entry.failures.map { remote, failure -> (TimeInterval, String) in
                if Self.lasting.contains(failure.errorClass) {
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
        await onFinished(report)
    }

    private func publish(_ name: String) {
        guard let entry = entries[name] else { return }
        let state = entry.running ? (entry.queued != nil ? "running, one queued" : "running") : "idle"
        onSchedule(ScheduleEntry(repository: name, nextRun: entry.running ? nil : entry.nextRun, state: state, note: entry.note))
    }

    /// The delay the scheduler would choose now, for tests and status.
    public func nextRun(of name: String) -> Date? { entries[name]?.nextRun }
    public func note(of name: String) -> String? { entries[name]?.note }
}
