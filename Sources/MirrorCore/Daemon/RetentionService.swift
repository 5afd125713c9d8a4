import AsyncAlgorithms
import Foundation
import Logging
import ServiceLifecycle

/// Applies the configured retention to the state database: once at start, then hourly.
/// The deletes go through GRDB's writer queue, off the cooperative pool.
struct RetentionService: Service {
    let state: DaemonState
    let store: StateStore
    let logger: Logger
    var every: Duration = .seconds(3600)

    func run() async throws {
        await prune()
        for await _ in AsyncTimerSequence(interval: every, clock: .continuous).cancelOnGracefulShutdown() {
            await prune()
        }
    }

    private func prune() async {
        let config = await state.config
        let retention = config.retention
        let files = await Task.detached { FileRetention.prune(stateDirectory: config.stateDirectory, retention: retention) }.value
        if files.quarantined + files.lfsObjects > 0 {
            logger.info("old files pruned from the state directory",
                        metadata: ["quarantined_caches": "\(files.quarantined)", "lfs_objects": "\(files.lfsObjects)", "bytes": "\(files.bytes)"])
        }
        do {
            let pruned = try await store.prune(retention)
            if pruned.runs > 0 {
                logger.info("old runs pruned from the state database", metadata: ["runs": "\(pruned.runs)", "ref_updates": "\(pruned.refUpdates)"])
            }
        } catch {
            logger.warning("could not prune old runs from the state database: \(error)")
        }
    }
}
