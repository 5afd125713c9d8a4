import Foundation

/// The workers a supervisor is running, so that a shutdown can stop them all
/// once its grace period is over; after that, no new worker starts.
public final class WorkerRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var children: [pid_t: ChildProcess] = [:]
    private var stopping = false

    public init() {}

    public var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    /// False once stopping: the caller must not start the worker.
    func register(_ child: ChildProcess) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        children[child.pid] = child
        return !stopping
    }

    func unregister(_ child: ChildProcess) {
        lock.lock()
        children[child.pid] = nil
        lock.unlock()
    }

    /// Kills every running worker (their runs are recorded as interrupted) and refuses new ones.
    public func stopAll() {
        lock.lock()
        stopping = true
        let running = Array(children.values)
        lock.unlock()
        // A worker leads its own process group: the programs it started go with it.
        for child in running { child.signalGroup(SIGKILL) }
    }
}

/// At most N network operations at once against one host, so that a fleet of
/// mirrors never floods one server.
public final class HostLimiter: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [String: DispatchSemaphore] = [:]
    public let limit: Int

    public init(limit: Int) { self.limit = limit }

    public func withSlot<T>(_ host: String, _ body: () throws -> T) rethrows -> T {
        lock.lock()
        let semaphore = slots[host] ?? DispatchSemaphore(value: limit)
        slots[host] = semaphore
        lock.unlock()
        semaphore.wait()
        defer { semaphore.signal() }
        return try body()
    }
}
