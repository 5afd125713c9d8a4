import Foundation
import Synchronization

/// Workers that run several listings at once (`JobKind.listing`), each on a
/// thread of its own in the worker, told apart by the job's id.
///
/// A listing mostly waits on the network: a pass over a far-away fleet keeps dozens in flight,
/// and one worker process each would cost a process start and ~36 MiB each. Here at most
/// `perWorker` listings share a worker. The limits stay per listing: a listing past its timeout
/// or stall limit has the worker killed (the only way to stop a hung libgit2 call), and the
/// listings that shared it, which read nothing and wrote nothing, run again on another worker.
final class ListingWorkers: Sendable {
    /// Listings one worker runs at once. A worker's start is most of its cost (~50 ms of CPU: the
    /// dynamic linker, Swift's runtime, libgit2's CA store), and a listing thread almost none: at 4,
    /// a 32-listing pass started 8 workers, a fifth of its CPU. A killed worker's other listings
    /// (read nothing, wrote nothing) run again on the next one.
    static let perWorker = 16
    /// Listings one worker serves before it is retired (as `WorkerPool.jobsPerWorker` for the other
    /// jobs): a listing keeps nothing once it is done, and at 200 a 200-repository pass started a third
    /// more workers than it ran at once, each start a few dozen milliseconds of CPU the listings waited on.
    static let listingsPerWorker = 1000

    private let workers = Mutex<[SharedWorker]>([])

    /// A running worker for this trust store with room for one more listing, the busiest first
    /// (so that a pass uses as few processes as it can), or else one `start` makes; its place for the
    /// listing is reserved. Workers that are gone or idle too long are let go. A worker is started
    /// with the lock held: the listings a pass starts together then share the first worker rather than
    /// each starting one (a listing sent before the worker reads it waits in the pipe).
    func take(trust: String, orStart start: () throws -> SharedWorker) rethrows -> SharedWorker {
        var gone: [SharedWorker] = []
        defer { for worker in gone { worker.close() } }
        return try workers.withLock { workers in
            workers.removeAll { worker in
                let expired = worker.isClosed || (worker.load == 0 && worker.idleFor > Workers.idleExit - 2)
                if expired { gone.append(worker) }
                return expired
            }
            let candidates = workers
                .filter { $0.trust == trust && !$0.isRetiring && $0.load < Self.perWorker }
                .sorted { $0.load > $1.load }
            for worker in candidates where worker.reserve() { return worker }
            let started = try start()
            _ = started.reserve()
            workers.append(started)
            return started
        }
    }

    /// A worker for this trust store started ahead of its first listing, unless one runs already.
    func prestart(trust: String, start: () throws -> SharedWorker) {
        workers.withLock { workers in
            guard !workers.contains(where: { $0.trust == trust && !$0.isClosed }), let started = try? start() else { return }
            workers.append(started)
        }
    }

    var processes: Set<pid_t> {
        workers.withLock { Set($0.filter { !$0.isClosed }.map(\.child.pid)) }
    }
}

