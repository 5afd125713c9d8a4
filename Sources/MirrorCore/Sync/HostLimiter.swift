import Foundation
import Synchronization

/// How much runs at once, sized for latency rather than for CPU:
/// - at most `perHost` connections to one host (`max_connections_per_host`): a host's limit protects that host;
/// - at most `overall` connections in all (`max_connections`): far-away remotes are waited on, not
///   worked on, so a fleet lists many at once; this is also what bounds the workers, and so memory;
/// - at most `transferring` repositories fetching, pushing or reading their cache at once
///   (`max_parallel_repositories`, `--jobs`): that is where CPU, memory and bandwidth go. A repository
///   whose remotes only need listing (nothing moved) never waits for one of these.
///
/// How many of a host's `perHost` connections are open at once adapts to how fast its listings come back
/// (a gradient limit, as TCP Vegas does for a window): while listings take about as long as the fastest
/// one seen, the host gets more at once; when they take longer — the server, or this machine, queues
/// them — fewer. A fixed 16 at once to a nearby `git daemon` (listen backlog 5) overflowed its backlog
/// and every dropped connection waited a second for TCP to try again; sshd drops connections past
/// `MaxStartups` (10) in the same way. Far away, where listings wait on the network, the host soon gets
/// all of `perHost`.
///
/// Slots are taken in one order (transfer, host, overall) and a connection slot is never held while
/// waiting for another kind, so nothing waits in a circle; a connection waiting for a busy host holds
/// no overall slot that another host's connection could use.
public final class HostLimiter: Sendable {
    public let perHost: Int
    public let overall: Int
    public let transferring: Int
    private let hosts = Mutex<[String: HostGate]>([:])
    private let connections: DispatchSemaphore
    private let transfers: DispatchSemaphore
    /// Operations holding a transfer slot, by repository: a repository takes one slot however many of
    /// its secondaries push at once.
    private let holders = Mutex<[String: Int]>([:])
    private let repositoryTurns = Mutex<[String: NSCondition]>([:])

    public init(perHost: Int, overall: Int, transferring: Int) {
        self.perHost = max(perHost, 1)
        self.overall = max(overall, 1)
        self.transferring = max(transferring, 1)
        connections = DispatchSemaphore(value: self.overall)
        transfers = DispatchSemaphore(value: self.transferring)
    }

    public convenience init(_ settings: DaemonSettings, transferring: Int? = nil) {
        self.init(perHost: settings.maxConnectionsPerHost, overall: settings.maxConnections,
                  transferring: transferring ?? settings.maxParallelRepositories)
    }

    /// Runs `body` within a connection to `host` (nil: no connection, a local job on the cache) and,
    /// when `transfer`, within `repository`'s transfer slot.
    public func withSlot<T>(host: String?, repository: String, transfer: Bool, _ body: () throws -> T) rethrows -> T {
        if transfer { enterTransfer(repository) }
        defer { if transfer { leaveTransfer(repository) } }
        guard let host else { return try body() }
        let gate = hosts.withLock { hosts in
            if let existing = hosts[host] { return existing }
            let created = HostGate(ceiling: perHost)
            hosts[host] = created
            return created
        }
        gate.enter(adaptive: !transfer)
        connections.wait()
        defer { connections.signal() }
        // A listing's time is the host's latency sample; a fetch or push takes as long as its data does.
        let started = ProcessInfo.processInfo.systemUptime
        defer { gate.leave(sample: transfer ? nil : ProcessInfo.processInfo.systemUptime - started) }
        return try body()
    }

    /// A connection to `host` that rides along an operation already holding its own slots (a first
    /// seed's push, opened by the primary's fetch), taken only if the host and the overall limit have
    /// room now: waiting for it while holding a slot could wait in a circle. Nil when there is none;
    /// the caller does without (the secondary is pushed to afterwards, as usual) and releases what it got.
    public func connectionIfFree(to host: String) -> Connection? {
        let gate = hosts.withLock { hosts in
            if let existing = hosts[host] { return existing }
            let created = HostGate(ceiling: perHost)
            hosts[host] = created
            return created
        }
        guard gate.tryEnter() else { return nil }
        guard connections.wait(timeout: .now()) == .success else {
            gate.leave(sample: nil)
            return nil
        }
        return Connection(release: { [connections] in
            connections.signal()
            gate.leave(sample: nil)
        })
    }

    /// A connection taken by `connectionIfFree(to:)`, given back once by `release()`.
    public final class Connection: Sendable {
        private let released = Mutex(false)
        private let give: @Sendable () -> Void

        init(release: @escaping @Sendable () -> Void) { give = release }

        public func release() {
            guard !released.withLock({ done in defer { done = true }; return done }) else { return }
            give()
        }
    }

    /// The first operation of a repository to transfer takes a slot for it; the others join it.
    private func enterTransfer(_ repository: String) {
        let turn = repositoryTurns.withLock { turns in
            if let existing = turns[repository] { return existing }
            let created = NSCondition()
            turns[repository] = created
            return created
        }
        // One operation per repository at a time decides whether a slot is needed, so that two of
        // its secondaries starting together do not take two.
        turn.lock()
        defer { turn.unlock() }
        let joined = holders.withLock { holders -> Bool in
            guard let count = holders[repository], count > 0 else { return false }
            holders[repository] = count + 1
            return true
        }
        guard !joined else { return }
        transfers.wait()
        holders.withLock { $0[repository] = 1 }
    }

    private func leaveTransfer(_ repository: String) {
        let released = holders.withLock { holders -> Bool in
            let count = (holders[repository] ?? 1) - 1
            holders[repository] = count > 0 ? count : nil
            return count <= 0
        }
        if released { transfers.signal() }
    }
}

/// One host's connections: listings start while fewer than `limit` (rounded down, at least `floor`)
/// are open, where the limit follows the host's listing times (see HostLimiter); fetches and pushes,
/// which the transfer slots already bound, while fewer than `ceiling` are.
///
/// Waiters queue, each kind in its order, and a connection that ends hands its room to the first
/// that fits: a pass keeps a hundred or more listings waiting on a busy host, and waking them all
/// to see which one may go (a broadcast) cost more CPU than the listings themselves.
final class HostGate: @unchecked Sendable {
    private let lock = NSLock()
    let ceiling: Double
    let floor: Double
    private var _limit: Double
    private var open = 0
    private var listings: [DispatchSemaphore] = []
    private var transfers: [DispatchSemaphore] = []
    /// The fastest listing seen, drifting up slowly so that a host that got slower for good is not
    /// held to what it once did.
    private var fastest: TimeInterval?

    init(ceiling: Int, initial: Int = 4, floor: Int = 2) {
        self.ceiling = Double(ceiling)
        self.floor = Double(min(floor, ceiling))
        _limit = Double(min(initial, ceiling))
    }

    var limit: Double { lock.withLock { _limit } }
    var allowed: Int { lock.withLock { Int(_limit) } }

    /// A listing (`adaptive`) waits for room within the adapted limit; a fetch or push, already bounded
    /// by the transfer slots, only for room within the host's own limit.
    func enter(adaptive: Bool = true) {
        let turn: DispatchSemaphore? = lock.withLock {
            let queue = adaptive ? listings : transfers
            if queue.isEmpty && open < (adaptive ? Int(_limit) : Int(ceiling)) {
                open += 1
                return nil
            }
            let waiting = DispatchSemaphore(value: 0)
            if adaptive { listings.append(waiting) } else { transfers.append(waiting) }
            return waiting
        }
        // The connection that admits this one counts it as open before signalling.
        turn?.wait()
    }

    /// Room within the host's own limit now, without waiting.
    func tryEnter() -> Bool {
        lock.withLock {
            guard open < Int(ceiling) else { return false }
            open += 1
            return true
        }
    }

    func leave(sample: TimeInterval?) {
        lock.withLock {
            open -= 1
            if let sample, sample > 0 { adaptHoldingLock(to: sample) }
            // Transfers first: each holds a repository's transfer slot that others wait for.
            while !transfers.isEmpty && open < Int(ceiling) {
                open += 1
                transfers.removeFirst().signal()
            }
            while !listings.isEmpty && open < Int(_limit) {
                open += 1
                listings.removeFirst().signal()
            }
        }
    }

    /// The gradient: the limit scaled by how much slower this listing was than the fastest (at most
    /// halved at once), plus room to grow of √limit; smoothed, and kept within [floor, ceiling].
    func adapt(to sample: TimeInterval) {
        lock.withLock { adaptHoldingLock(to: sample) }
    }

    private func adaptHoldingLock(to sample: TimeInterval) {
        let fastest = min((self.fastest ?? sample) * 1.005, sample)
        self.fastest = fastest
        let gradient = max(0.5, min(1, fastest / sample))
        let target = _limit * gradient + _limit.squareRoot()
        _limit = max(floor, min(ceiling, _limit * 0.8 + target * 0.2))
    }
}
