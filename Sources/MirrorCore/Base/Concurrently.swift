import Foundation
import Synchronization

/// Runs `body` for every index in `0..<count`, each on a thread of its own, at most `limit` at a
/// time, and returns the results in index order once all are done.
///
/// Threads rather than tasks: the work blocks (a worker process's pipe, a socket, a child process),
/// and blocking the cooperative pool's few threads would stall the daemon's HTTP server and timers.
/// When `deadline` passes first, `atDeadline` is called once (it should make the work end soon), and
/// the results are still awaited: nothing is left running behind the caller's back.
public func concurrently<T: Sendable>(_ count: Int, limit: Int? = nil, deadline: Date? = nil, atDeadline: () -> Void = {},
                                      _ body: @escaping @Sendable (Int) -> T) -> [T] {
    guard count > 0 else { return [] }
    let results = Mutex<[T?]>(Array(repeating: nil, count: count))
    let slots = DispatchSemaphore(value: max(limit ?? count, 1))
    let group = DispatchGroup()
    for index in 0..<count {
        slots.wait()
        group.enter()
        BlockingThreads.shared.run {
            let value = body(index)
            results.withLock { $0[index] = value }
            slots.signal()
            group.leave()
        }
    }
    if let deadline, group.wait(timeout: .now() + max(0, deadline.timeIntervalSinceNow)) == .timedOut { atDeadline() }
    group.wait()
    return results.withLock { $0.map { $0! } }
}

/// Threads for work that blocks, kept for reuse: a pass starts a few thousand short-lived pieces of
/// work (each repository, each of its secondaries, each listing in a worker), and a new thread each
/// (an 8 MiB stack mapped and unmapped, named, joined) cost more CPU than the pass's SQLite writes.
/// Work never queues: with no thread idle a new one starts, so work that waits on other work cannot
/// wait in a circle. A thread idle for `idleExit` leaves.
final class BlockingThreads: Sendable {
    static let shared = BlockingThreads()
    static let idleExit: TimeInterval = 10
    /// libgit2's transports keep buffers on the stack, and Foundation's default for a secondary thread is small.
    static let stackSize = 8 << 20

    private final class Parked: Sendable {
        let wake = DispatchSemaphore(value: 0)
        /// Set before `wake` is signalled and taken after it is waited for.
        let work = Mutex<(@Sendable () -> Void)?>(nil)
    }

    private let idle = Mutex<[Parked]>([])

    /// Threads waiting for work now.
    var idleCount: Int { idle.withLock { $0.count } }

    func run(_ work: @escaping @Sendable () -> Void) {
        if let parked = idle.withLock({ $0.popLast() }) {
            parked.work.withLock { $0 = work }
            parked.wake.signal()
            return
        }
        let parked = Parked()
        parked.work.withLock { $0 = work }
        let thread = Thread { [self] in loop(parked) }
        thread.stackSize = Self.stackSize
        thread.start()
    }

    private func loop(_ me: Parked) {
        while true {
            let work = me.work.withLock { work in
                defer { work = nil }
                return work
            }
            work?()
            idle.withLock { $0.append(me) }
            if me.wake.wait(timeout: .now() + Self.idleExit) == .timedOut {
                let left = idle.withLock { idle -> Bool in
                    guard let index = idle.firstIndex(where: { $0 === me }) else { return false }
                    idle.remove(at: index)
                    return true
                }
                if left { return }
                // Taken for work just as the wait ran out: the work's signal is on its way.
                me.wake.wait()
            }
        }
    }
}
