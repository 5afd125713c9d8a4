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
/// How many of a host's `perHost` connections are open at once follows its listings, as TCP's window
/// follows acknowledgements: a host starts with 4, gets one more for each listing that comes back,
/// and is halved, once per round of listings, when one takes half a second longer than the fastest —
/// what a connection the server dropped costs, since TCP waits a second to try again. Its connections
/// also start spaced (`HostGate.pace`), never in the same millisecond: a fixed 16 at once to a nearby
/// `git daemon` (listen backlog 5) overflowed its backlog, and sshd drops connections past
/// `MaxStartups` (10) alike. (Starting at 8 overflowed it too: a loopback no-op round took 1.1 s
/// instead of 0.3 s.) Listings slowed by this machine's own load (tens of milliseconds) do
/// not count: a limit that followed them (a gradient, tried first) starved a loopback pass of
/// listings while its transfers had the CPU. A host whose listings take under 20 ms gets at most 6:
/// nearby, more at once only queue on this machine's CPU, and six connections never overflow a git
/// daemon's accept queue (backlog 5 holds 6), however long it waits for the CPU (at 8, one loopback
/// no-op round in ten lost a second to a dropped SYN).
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
        let wait = gate.pace()
        if wait > 0 { usleep(useconds_t(wait * 1_000_000)) }
        // A listing's time is the host's latency sample; a fetch or push takes as long as its data does.
        let started = ProcessInfo.processInfo.systemUptime
        defer { gate.leave(sample: transfer ? nil : (started, ProcessInfo.processInfo.systemUptime - started)) }
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
final class HostGate: Sendable {
    let ceiling: Double
    let floor: Double
    private struct Window {
        var _limit: Double
        var open = 0
        var listings: [DispatchSemaphore] = []
        var transfers: [DispatchSemaphore] = []
        /// The fastest listing seen, drifting up slowly so that a host that got slower for good is not
        /// held to what it once did.
        var fastest: TimeInterval?
        /// Below it the limit grows by one per listing (slow start); above it, by one per round.
        var threshold: Double
        /// When the limit was last cut (system uptime): listings started before it do not cut it again.
        var lastCut: TimeInterval = -.infinity
        /// When the host's next connection may start (system uptime); see `pace`.
        var nextStart: TimeInterval = 0
    }
    private let window: Mutex<Window>
    /// A host whose fastest listing took less than this is nearby, and gets at most `nearby` at once
    /// (what a listen backlog of 5 holds).
    static let nearbyLatency: TimeInterval = 0.02
    static let nearby: Double = 6
    /// The spacing before the host's first listing is back, and the most it ever is.
    static let firstSpacing: TimeInterval = 0.002
    static let maxSpacing: TimeInterval = 0.01
    /// The least: a nearby git daemon forks once per connection it accepts, and half a millisecond
    /// apart its backlog of 5 stays empty (bursts a tenth of that apart overflowed it: a second each).
    static let minSpacing: TimeInterval = 0.0005

    init(ceiling: Int, initial: Int = 4, floor: Int = 2) {
        self.ceiling = Double(ceiling)
        self.floor = Double(min(floor, ceiling))
        window = Mutex(Window(_limit: Double(min(initial, ceiling)), threshold: Double(ceiling)))
    }

    var allowed: Int { window.withLock { w in Int(w._limit) } }

    /// A listing (`adaptive`) waits for room within the adapted limit; a fetch or push, already bounded
    /// by the transfer slots, only for room within the host's own limit.
    func enter(adaptive: Bool = true) {
        let turn: DispatchSemaphore? = window.withLock { w in
            let queue = adaptive ? w.listings : w.transfers
            if queue.isEmpty && w.open < (adaptive ? Int(w._limit) : Int(ceiling)) {
                w.open += 1
                return nil
            }
            let waiting = DispatchSemaphore(value: 0)
            if adaptive { w.listings.append(waiting) } else { w.transfers.append(waiting) }
            return waiting
        }
        // The connection that admits this one counts it as open before signalling.
        turn?.wait()
    }

    /// How long the connection about to open waits so that the host's connections start spaced, not in
    /// bursts: listings that started together end together, and the next wave's connections would
    /// reach the host in the same millisecond, where `git daemon` (listen backlog 5) drops the SYNs
    /// past its backlog, each a second's TCP retry (a 1-host pass at 100 ms lost a fifth of its time
    /// so), and sshd refuses past `MaxStartups`. The spacing is the fastest listing over twice the
    /// limit: half what the limit's own rate needs at that latency, so it never holds the pass back
    /// (at 100 ms and 16 at once, 3 ms; a nearby host's is `minSpacing`).
    func pace(now: TimeInterval = ProcessInfo.processInfo.systemUptime) -> TimeInterval {
        window.withLock { w in
            let spacing = w.fastest.map { min(Self.maxSpacing, max(Self.minSpacing, $0 / (2 * max(w._limit, 1)))) } ?? Self.firstSpacing
            let start = max(now, w.nextStart)
            w.nextStart = start + spacing
            return start - now
        }
    }

    /// Room within the host's own limit now, without waiting.
    func tryEnter() -> Bool {
        window.withLock { w in
            guard w.open < Int(ceiling) else { return false }
            w.open += 1
            return true
        }
    }

    /// `sample`: when a listing started (system uptime) and how long it took.
    func leave(sample: (started: TimeInterval, took: TimeInterval)?) {
        window.withLock { w in
            w.open -= 1
            if let sample, sample.took > 0 { adaptHoldingLock(&w, to: sample.took, started: sample.started) }
            // Transfers first: each holds a repository's transfer slot that others wait for.
            while !w.transfers.isEmpty && w.open < Int(ceiling) {
                w.open += 1
                w.transfers.removeFirst().signal()
            }
            while !w.listings.isEmpty && w.open < Int(w._limit) {
                w.open += 1
                w.listings.removeFirst().signal()
            }
        }
    }

    /// One listing back: a drop (half a second slower than the fastest, and twice as slow) halves the
    /// limit and sets the threshold there, once for the listings that were under way when it was cut;
    /// otherwise the limit grows by one below the threshold and by 1/limit above it.
    func adapt(to sample: TimeInterval, started: TimeInterval = .infinity) {
        window.withLock { adaptHoldingLock(&$0, to: sample, started: started) }
    }

    private func adaptHoldingLock(_ w: inout Window, to sample: TimeInterval, started: TimeInterval) {
        let fastest = min((w.fastest ?? sample) * 1.005, sample)
        w.fastest = fastest
        if sample > fastest + 0.5 && sample > 2 * fastest {
            guard started > w.lastCut else { return }
            w.threshold = max(floor, w._limit / 2)
            w._limit = w.threshold
            w.lastCut = ProcessInfo.processInfo.systemUptime
        } else {
            // A host a few milliseconds away gains nothing from more than `nearby` at once (its
            // listings wait on this machine's CPU, not on the network) and may have a small listen backlog.
            let cap = fastest < Self.nearbyLatency ? min(ceiling, Self.nearby) : ceiling
            w._limit = min(cap, w._limit + (w._limit < w.threshold ? 1 : 1 / w._limit))
        }
    }
}
