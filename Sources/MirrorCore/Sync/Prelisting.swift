import Foundation
import Synchronization

/// The secondaries' listings, started together with the primary's: on a pass where nothing moved,
/// a repository then costs one round trip of listings, not the primary's and then the secondaries'.
/// A listing is only a starting point for the plan: every push still carries its lease, so a ref
/// that moves on the server after it was listed is left alone and reported, as before.
final class Prelisting: Sendable {
    final class Pending: Sendable {
        private let done = DispatchSemaphore(value: 0)
        private let result = Mutex<Result<Listing, SyncFailure>?>(nil)

        func finish(_ value: Result<Listing, SyncFailure>) {
            result.withLock { $0 = value }
            done.signal()
        }

        /// The listing, once it is done.
        func wait() -> Result<Listing, SyncFailure> {
            done.wait()
            done.signal()
            return result.withLock { $0! }
        }
    }

    private let pending: [String: Pending]
    private let all = DispatchGroup()

    /// Starts listing every secondary of `mirror` (at most max_parallel_pushes at once, as for pushes).
    init(_ mirror: Mirror, context: SyncContext) {
        pending = Dictionary(uniqueKeysWithValues: mirror.secondaries.map { ($0.name, Pending()) })
        let entries = mirror.secondaries.map { ($0, pending[$0.name]!) }
        let group = all
        group.enter()
        BlockingThreads.shared.run {
            _ = concurrently(entries.count, limit: context.config.maxParallelPushes) { index in
                let (secondary, slot) = entries[index]
                slot.finish(Result { () throws(SyncFailure) -> Listing in
                    let access = try context.credentials.endpoint(for: secondary, config: context.config)
                    let limits = Workers.Limits(timeout: secondary.policy.timeout, stall: secondary.policy.stallTimeout)
                    return try context.run(ListJob(remote: access), on: secondary, repository: mirror.name, limits: limits)
                })
            }
            group.leave()
        }
    }

    /// The listing of one secondary (each is taken at most once: a second sync of it lists anew).
    func listing(of name: String) -> Pending? { pending[name] }

    /// Waits until every listing is done: nothing is left running behind the run.
    func waitAll() { all.wait() }
}
