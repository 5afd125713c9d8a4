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
/// Slots are taken in one order (transfer, host, overall) and a connection slot is never held while
/// waiting for another kind, so nothing waits in a circle; a connection waiting for a busy host holds
/// no overall slot that another host's connection could use.
public final class HostLimiter: Sendable {
    public let perHost: Int
    public let overall: Int
    public let transferring: Int
    private let hosts = Mutex<[String: DispatchSemaphore]>([:])
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
        let semaphore = hosts.withLock { hosts in
            if let existing = hosts[host] { return existing }
            let created = DispatchSemaphore(value: perHost)
            hosts[host] = created
            return created
        }
        semaphore.wait()
        defer { semaphore.signal() }
        connections.wait()
        defer { connections.signal() }
        return try body()
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
