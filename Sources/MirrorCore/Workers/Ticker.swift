import Foundation

/// Calls `body` every `interval` seconds, on a thread of its own, until it is stopped or let go.
final class Ticker: Sendable {
    private let stopped = DispatchSemaphore(value: 0)

    init(every interval: TimeInterval, _ body: @escaping @Sendable () -> Void) {
        let stopped = self.stopped
        Thread.detachNewThread {
            while stopped.wait(timeout: .now() + interval) == .timedOut { body() }
        }
    }

    func stop() { stopped.signal() }

    deinit { stopped.signal() }
}
