import Foundation
import Logging
import ServiceLifecycle

/// Lists the `discover:` sources at start and every `daemon.discover_interval` (read anew each time:
/// a reload that changes it counts), and hands the expanded configuration to the scheduler.
struct DiscoveryService: Service {
    let state: DaemonState
    let discoverer: Discoverer
    let apply: @Sendable (Config) async -> Void
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await discover()
                let interval = await state.written.daemon.discoverInterval
                try? await Task.sleep(for: .seconds(interval))
            }
        }
    }

    func discover() async {
        let (written, load) = (await state.written, await state.loads)
        guard !written.discover.isEmpty else { return }
        let discoverer = self.discoverer
        // The APIs are asked from a thread of its own: their calls block.
        let outcome = await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: discoverer.run(written, list: true, record: true)) }
        }
        for failure in outcome.failures {
            logger.warning("discovery source could not be listed; its last listing stays in force",
                           metadata: ["source": "\(failure.source)", "error_class": "\(failure.failure.errorClass.rawValue)", "error": "\(failure.failure.message)"])
        }
        for entry in outcome.problems {
            logger.warning("discovered repository not mirrored", metadata: ["source": "\(entry.source)", "path": "\(entry.repository.path)",
                                                                          "status": "\(entry.status.word)", "reason": "\(entry.status.reason ?? "")"])
        }
        for appeared in outcome.appeared {
            logger.info("repository discovered", metadata: ["source": "\(appeared.source)", "path": "\(appeared.path)"])
        }
        for gone in outcome.gone {
            logger.info("repository no longer listed by its source; unscheduled, nothing deleted",
                        metadata: ["source": "\(gone.source)", "path": "\(gone.path)"])
        }
        // The file may have been reloaded meanwhile: a listing of the old one is applied only to it.
        guard await state.loads == load else { return }
        await apply(outcome.config)
    }
}
