import Logging
import ServiceLifecycle

/// Writes the scheduler's published entries to SQLite, in the order they were published. The
/// scheduler hands them over without waiting, so a busy database (a CLI sync writing) never
/// stalls scheduling or the webhooks that talk to the scheduler.
struct ScheduleRecorder: Service {
    let store: StateStore
    let logger: Logger
    private let entries: AsyncStream<ScheduleEntry>
    private let continuation: AsyncStream<ScheduleEntry>.Continuation

    init(store: StateStore, logger: Logger) {
        self.store = store
        self.logger = logger
        (entries, continuation) = AsyncStream.makeStream(of: ScheduleEntry.self)
    }

    func record(_ entry: ScheduleEntry) { continuation.yield(entry) }

    func run() async throws {
        // On shutdown the stream is finished, and what was published before is still written.
        await withGracefulShutdownHandler {
            for await entry in entries {
                do {
                    try await store.recordSchedule(entry)
                } catch {
                    logger.warning("could not record the next run in the state database (status shows an older time)",
                                   metadata: ["repository": "\(entry.repository)", "error": "\(error)"])
                }
            }
        } onGracefulShutdown: {
            continuation.finish()
        }
    }
}
