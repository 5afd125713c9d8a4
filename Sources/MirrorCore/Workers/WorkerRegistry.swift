import Foundation
import Synchronization

/// The workers a supervisor is running, so that a shutdown can stop them all
/// once its grace period is over; after that, no new worker starts.
public final class WorkerRegistry: Sendable {
    private struct Running {
        var children: [pid_t: ChildProcess] = [:]
        var stopping = false
    }

    private let state = Mutex(Running())

    public init() {}

    public var isStopping: Bool { state.withLock { $0.stopping } }

    /// False once stopping: the caller must not start the worker.
    func register(_ child: ChildProcess) -> Bool {
        state.withLock { state in
            state.children[child.pid] = child
            return !state.stopping
        }
    }

    func unregister(_ child: ChildProcess) {
        state.withLock { _ = $0.children.removeValue(forKey: child.pid) }
    }

    /// Kills every running worker (their runs are recorded as interrupted) and refuses new ones.
    public func stopAll() {
        let running = state.withLock { state in
            state.stopping = true
            return Array(state.children.values)
        }
        // A worker leads its own process group: the programs it started go with it.
        for child in running { child.signalGroup(SIGKILL) }
    }
}
