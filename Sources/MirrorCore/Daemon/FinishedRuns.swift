import Foundation
import Logging

/// What the daemon does when a repository's run ends: its metrics (with since when each secondary out
/// of step is behind), its notifications, and a log line per remote.
struct FinishedRuns: Sendable {
    let store: StateStore
    let metrics: DaemonMetrics
    let notifier: Notifier
    let redactor: Redactor
    let logger: Logger

    func observe(_ report: RepositoryReport) {
        // Behind: since the secondary was last in step; one never in step is behind since the repository's first run.
        var behind: [String: Date] = [:]
        if report.secondaries.contains(where: { $0.failure != nil }) {
            let states = (try? store.remoteStates()) ?? []
            let firstRun = try? store.firstRunStart(repository: report.repository)
            for remote in report.secondaries where remote.failure != nil {
                behind[remote.remote] = states.first { $0.repository == report.repository && $0.remote == remote.remote }?.lastSuccess ?? firstRun
            }
        }
        metrics.record(report, behindSince: behind)
        for failure in report.journalFailures {
            logger.error("the state database did not record \(failure); the refs moved, but history does not show it",
                         metadata: ["repository": "\(report.repository)"])
        }
        notifier.observe(report)
        for remote in [report.primary] + report.secondaries {
            var metadata: Logger.Metadata = ["repository": "\(report.repository)", "remote": "\(remote.remote)",
                                             "result": "\(remote.result.rawValue)", "run_id": "\(report.runId.map(String.init) ?? "-")"]
            if remote.result == .interrupted {
                logger.info("interrupted; retried on the next start", metadata: metadata)
            } else if let failure = remote.failure {
                metadata["error_class"] = "\(failure.errorClass.rawValue)"
                logger.warning("\(redactor.redact(failure.message))", metadata: metadata)
            } else {
                logger.info("in step", metadata: metadata)
            }
        }
    }
}
