import Foundation
import Logging

/// What the daemon learns from the state database when it starts, before its first run.
enum DaemonStart {
    static func markBehind(_ metrics: DaemonMetrics, from store: StateStore, config: Config) {
        // Secondaries out of step when the daemon starts are behind from then on, not from their next run.
        for row in (try? store.remoteStates()) ?? [] where row.role == .secondary && config.mirror(named: row.repository) != nil {
            guard row.state != .ok else { metrics.recordBehind(repository: row.repository, remote: row.remote, since: nil); continue }
            metrics.recordBehind(repository: row.repository, remote: row.remote,
                                 since: row.lastSuccess ?? (try? store.firstRunStart(repository: row.repository)) ?? row.lastAttempt)
        }
    }

    /// Returns the repositories whose last run was interrupted: they run first.
    static func settleUnfinishedRuns(in store: StateStore, config: Config, logger: Logger) -> Set<String> {
        // Runs a stopped process left `running` (a crash, a kill -9) are recorded as interrupted, once the
        // repository's lock shows that nobody runs them; interrupted repositories then run first.
        for repository in (try? store.repositoriesWithUnfinishedRuns()) ?? [] {
            let lockPath = config.cacheDirectory.appendingPathComponent("\(repository).lock").path
            guard case .acquired(let lock)? = try? RepositoryLock.acquire(path: lockPath, wait: 0) else { continue }
            defer { lock.release() }
            do {
                try store.markUnfinishedRunsInterrupted(repository: repository)
                logger.info("a run left running by a stopped process is recorded as interrupted", metadata: ["repository": "\(repository)"])
            } catch {
                logger.warning("could not record a run left running by a stopped process as interrupted", metadata: ["repository": "\(repository)", "error": "\(error)"])
            }
        }
        return (try? store.repositoriesLastInterrupted()) ?? []
    }
}
