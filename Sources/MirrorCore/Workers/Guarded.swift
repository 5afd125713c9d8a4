import Foundation

/// State that threads change and wait on: a lock, a condition and the state they guard, in one place.
/// Every other shared state of the sync core is a `Mutex`; this is for the threads that must sleep
/// until something changes (a pipe's reader and the job that waits for its answer, a pack's writer and
/// its feeder) — the one `@unchecked Sendable` they need, checked here once.
final class Guarded<State>: @unchecked Sendable {
    private let condition = NSCondition()
    private var state: State

    init(_ state: State) { self.state = state }

    /// Reads or changes the state; waiters are woken when `wake` (after the change).
    @discardableResult
    func withLock<R>(wake: Bool = false, _ body: (inout State) throws -> R) rethrows -> R {
        condition.lock()
        defer {
            if wake { condition.broadcast() }
            condition.unlock()
        }
        return try body(&state)
    }

    /// Waits until `ready` holds (checked under the lock, again after every wake), or until `deadline`
    /// passes; then runs `body` under the same lock. `ready` tells which happened.
    func wait<R>(until deadline: Date? = nil, for ready: (State) -> Bool, then body: (inout State, _ ready: Bool) throws -> R) rethrows -> R {
        condition.lock()
        defer { condition.unlock() }
        while !ready(state) {
            if let deadline {
                if !condition.wait(until: deadline) { break }
            } else {
                condition.wait()
            }
        }
        return try body(&state, ready(state))
    }
}

/// A value lent to another thread for as long as its owner waits for that thread (git's credential
/// questions are answered on the relay's thread while the push that owns the hooks waits for git).
struct Lent<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
