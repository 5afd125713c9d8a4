import Foundation
import Synchronization
import Git
import Prometheus

/// The daemon's Prometheus metrics. Labels come from the configuration's names
/// (repository, remote), never from URLs, so their number stays bounded.
public final class DaemonMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    static let durationBuckets: [Double] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800]
    /// Per secondary (repository, remote): since when it is out of step, nil while in step. The gauge
    /// is computed from it at every scrape, so it grows between syncs as the alert rules expect.
    private let outOfStepSince = Mutex<[String: (repository: String, remote: String, since: Date?)]>([:])
    private let clock: @Sendable () -> Date

    /// `version`: the release alone (`0.1.0`), the only label of gitmirror_build_info.
    public init(version: String, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.clock = clock
        registry.makeGauge(descriptor: Self.name("build", "info", "Build information; always 1."),
                           labels: [("version", version)]).set(to: 1.0)
    }

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "gitmirror", metricName: metric, unitName: unit, helpText: help)
    }

    /// One finished sync of one repository. `behindSince` gives, per secondary out of step,
    /// since when (its last success, or the repository's first run). The run counter is
    /// bumped last, so a scrape that sees a run also sees everything it changed.
    public func record(_ report: RepositoryReport, behindSince: [String: Date] = [:], now: Date = Date()) {
        let repository = report.repository
        // An interrupted run (a restart) says nothing about the remotes: no counter or gauge moves.
        guard !report.wasInterrupted else { return }
        let result = !report.inStep ? "error" : (report.secondaries.allSatisfy { $0.result == .upToDate } ? "noop" : "success")
        if !report.journalFailures.isEmpty {
            registry.makeCounter(descriptor: Self.name("journal_write_failures", "total", "Runs whose outcome or journal rows could not be written to the state database."),
                                 labels: [("repository", repository)]).increment()
        }
        registry.makeValueHistogram(descriptor: Self.name("sync_duration", "seconds", "Duration of one repository sync."),
                                    labels: [("repository", repository)], buckets: Self.durationBuckets).record(report.duration)
        for remote in [report.primary] + report.secondaries {
            let labels = [("repository", repository), ("remote", remote.remote)]
            registry.makeGauge(descriptor: Self.name("last_attempt", "timestamp_seconds", "When the remote was last synced."),
                               labels: labels).set(to: now.timeIntervalSince1970)
            registry.makeGauge(descriptor: Self.name("remote_failing", "", "1 while the remote's last sync failed or left a ref out of step, else 0."),
                               labels: labels).set(to: remote.failure == nil ? 0 : 1)
            if remote.failure == nil {
                registry.makeGauge(descriptor: Self.name("last_success", "timestamp_seconds", "When the remote last synced without error."),
                                   labels: labels).set(to: now.timeIntervalSince1970)
            }
            guard remote.role == .secondary else { continue }
            registry.makeValueHistogram(descriptor: Self.name("push_duration", "seconds", "Duration of one secondary's sync."),
                                        labels: labels, buckets: Self.durationBuckets).record(remote.duration)
            for (action, count) in [("created", remote.created), ("updated", remote.updated), ("deleted", remote.deleted), ("kept", remote.kept)] where count > 0 {
                registry.makeCounter(descriptor: Self.name("refs", "total", "Refs created, updated, deleted or kept on secondaries."),
                                     labels: labels + [("action", action)]).increment(by: Int64(count))
            }
            if remote.bytes > 0 {
                registry.makeCounter(descriptor: Self.name("pushed", "bytes_total", "Bytes pushed to secondaries."),
                                     labels: labels).increment(by: Int64(remote.bytes))
            }
            if let failure = remote.failure {
                registry.makeCounter(descriptor: Self.name("rejections", "total", "Failed secondary syncs by error class."),
                                     labels: labels + [("class", failure.errorClass.rawValue)]).increment()
            }
            recordBehind(repository: repository, remote: remote.remote, since: remote.failure == nil ? nil : behindSince[remote.remote] ?? now)
        }
        if let cache = report.cache {
            registry.makeGauge(descriptor: Self.name("cache_packs", "", "Packs in the repository's cache when its last run ended."),
                               labels: [("repository", repository)]).set(to: Double(cache.packs))
            registry.makeGauge(descriptor: Self.name("cache", "bytes", "Bytes of the packs (and their indexes) in the repository's cache when its last run ended."),
                               labels: [("repository", repository)]).set(to: Double(cache.bytes))
        }
        registry.makeCounter(descriptor: Self.name("sync_runs", "total", "Repository syncs by result (success, error, noop)."),
                             labels: [("repository", repository), ("result", result)]).increment()
    }

    /// Since when a secondary is out of step with its primary (nil: in step now).
    public func recordBehind(repository: String, remote: String, since: Date?) {
        outOfStepSince.withLock { $0["\(repository)\u{0}\(remote)"] = (repository, remote, since) }
    }

    /// Forgets what a removed repository's secondaries were.
    public func keepBehind(only repositories: Set<String>) {
        outOfStepSince.withLock { $0 = $0.filter { repositories.contains($0.value.repository) } }
    }

    /// A full pass over the fleet ended: how long it took, and when.
    public func recordPass(_ pass: PassRecord) {
        registry.makeGauge(descriptor: Self.name("last_full_pass", "seconds", "How long the last full pass took: until every scheduled repository had finished a run."),
                           labels: []).set(to: pass.duration)
        registry.makeGauge(descriptor: Self.name("last_full_pass_end", "timestamp_seconds", "When the last full pass ended."),
                           labels: []).set(to: pass.finishedAt.timeIntervalSince1970)
    }

    /// Repositories whose run is overdue (due more than a tenth of their interval ago, waiting for a slot).
    public func recordOverdue(_ count: Int) {
        registry.makeGauge(descriptor: Self.name("repositories_overdue", "", "Repositories whose scheduled run is overdue."),
                           labels: []).set(to: Double(count))
    }

    public func recordReload(success: Bool) {
        registry.makeCounter(descriptor: Self.name("config_reloads", "total", "Configuration reloads by result."),
                             labels: [("result", success ? "success" : "error")]).increment()
        if success { recordConfigLoaded() }
    }

    /// The configuration in force was loaded now (at start, or by a successful reload).
    public func recordConfigLoaded() {
        registry.makeGauge(descriptor: Self.name("config_last_reload_success", "timestamp_seconds", "When the configuration in force was loaded (start or last successful reload)."),
                           labels: []).set(to: clock().timeIntervalSince1970)
    }

    /// The exposition, with each secondary's behind_seconds computed for this moment.
    public func render() -> [UInt8] {
        let now = clock()
        let entries = outOfStepSince.withLock { Array($0.values) }
        for entry in entries {
            registry.makeGauge(descriptor: Self.name("secondary_behind", "seconds", "Seconds since the secondary was last in step with its primary."),
                               labels: [("repository", entry.repository), ("remote", entry.remote)])
                .set(to: entry.since.map { max(0, now.timeIntervalSince($0)) } ?? 0)
        }
        return registry.emitToBuffer()
    }
}
