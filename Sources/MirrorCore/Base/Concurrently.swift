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
        Thread.detachNewThread {
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
