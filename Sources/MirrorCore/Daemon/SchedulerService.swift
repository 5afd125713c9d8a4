import Foundation
import Logging
import ServiceLifecycle

/// Runs the scheduler; on shutdown starts nothing new, lets running syncs finish
/// within the grace period, then stops their workers.
struct SchedulerService: Service {
    let scheduler: Scheduler
    let registry: WorkerRegistry
    let grace: @Sendable () async -> TimeInterval
    let binding: ServerBinding
    let logger: Logger

    func run() async throws {
        // Ready means both: the port is bound (hooks can arrive) and the first scheduling pass is done.
        // A daemon that never binds (the port is taken) is shut down by the group, which ends this wait.
        guard let listening = try? await cancelWhenGracefulShutdown({ try await binding.address() }) else { return }
        await withGracefulShutdownHandler {
            await scheduler.run {
                SystemdNotify.send("READY=1")
                let count = await scheduler.repositoryNames.count
                logger.info("daemon ready", metadata: ["repositories": "\(count)", "listening": "\(listening)"])
            }
        } onGracefulShutdown: {
            Task { await scheduler.stop() }
        }
        SystemdNotify.send("STOPPING=1")
        let grace = await self.grace()
        let running = await scheduler.runningCount
        guard running > 0 else { return }
        logger.info("waiting for running syncs to finish", metadata: ["running": "\(running)", "grace": "\(formatDuration(grace))"])
        if await scheduler.drain(within: grace) { return }
        let left = await scheduler.runningCount
        logger.warning("grace period over; stopping the remaining syncs' workers", metadata: ["running": "\(left)"])
        registry.stopAll()
        // A stopped worker ends its sync at once; the runs are then recorded as interrupted.
        _ = await scheduler.drain(within: 15)
    }
}

/// The address the HTTP server is bound to, once it is.
final class ServerBinding: Sendable {
    private let stream: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1))
    }

    func bound(_ address: String) {
        continuation.yield(address)
        continuation.finish()
    }

    /// Waits until the server is bound; throws when cancelled first. Call from one task only.
    func address() async throws -> String {
        for await address in stream { return address }
        throw CancellationError()
    }
}
