import Foundation
import Synchronization

/// What one remote of a repository is doing, or that it is done (`finished`: its verdict, in one word).
public struct ProgressNote: Sendable, Equatable {
    public var repository: String
    public var remote: String
    public var message: String
    public var finished: Bool

    public init(repository: String, remote: String, message: String, finished: Bool = false) {
        self.repository = repository
        self.remote = remote
        self.message = message
        self.finished = finished
    }
}

/// The latest word from every remote a sync is working on. The CLI draws it (one line per remote
/// on a terminal; a line per remote every 10 s when nobody watches), the daemon logs it, and the
/// state database keeps it for `status`.
public final class ProgressBoard: Sendable {
    public struct Entry: Sendable, Equatable {
        public var repository: String
        public var remote: String
        public var line: String
        public var started: Date
        public var updated: Date

        public var name: String { "\(repository)/\(remote)" }
    }

    private struct Board {
        var entries: [String: Entry] = [:]
        var order: [String] = []
    }

    private let board = Mutex(Board())
    private let clock: @Sendable () -> Date

    public init(clock: @escaping @Sendable () -> Date = { Date() }) {
        self.clock = clock
    }

    /// A remote's news; the news that it is finished takes it off the board.
    public func update(_ note: ProgressNote) {
        let (repository, remote, message) = (note.repository, note.remote, note.message)
        let key = "\(repository)/\(remote)"
        let now = clock()
        board.withLock { board in
            if note.finished {
                board.entries[key] = nil
                board.order.removeAll { $0 == key }
                return
            }
            if var entry = board.entries[key] {
                entry.line = message
                entry.updated = now
                board.entries[key] = entry
            } else {
                board.entries[key] = Entry(repository: repository, remote: remote, line: message, started: now, updated: now)
                board.order.append(key)
            }
        }
    }

    /// Remotes still working, in the order they started.
    public var active: [Entry] { board.withLock { board in board.order.compactMap { board.entries[$0] } } }

    /// Remotes that have been working at least `after` seconds: the ones worth a line when nobody watches.
    public func longRunning(after: TimeInterval) -> [Entry] {
        let now = clock()
        return active.filter { now.timeIntervalSince($0.started) >= after }
    }

    /// Runs `body` every `interval` seconds with the remotes working for at least that long, until
    /// the returned stop is called: the heartbeat for logs, cron mail and CI output.
    public func everyInterval(_ interval: TimeInterval, _ body: @escaping @Sendable ([Entry]) -> Void) -> @Sendable () -> Void {
        let stopped = DispatchSemaphore(value: 0)
        Thread.detachNewThread { [self] in
            while stopped.wait(timeout: .now() + interval) == .timedOut {
                let working = longRunning(after: interval)
                if !working.isEmpty { body(working) }
            }
        }
        return { stopped.signal() }
    }
}
