import Foundation
import Git

extension Worker {
    /// Lists the primary and, when something moved, fetches it on the same connection (FetchJob.deciding):
    /// git's `fetch` makes one connection where a listing job and a fetch job made two, each with its
    /// own upload-pack and advertisement. The decision is FetchDecision's, from this connection's
    /// advertisement and the cache's refs the supervisor sent, which it decides again from the listing
    /// returned. The remote negotiates from a scratch repository (FetchScratch) whose refs are written
    /// once the decision is made: libgit2 reads them when it negotiates, not when it connects.
    static func listAndFetch(_ job: FetchJob, deciding: FetchJob.Deciding, into repository: Repository, hooks: TransferHooks,
                             reporter: JobReporter) throws -> FetchJob.Result {
        let scratch = try FetchScratch(cache: job.cache, offering: [])
        defer { scratch.remove() }
        let remote = try Remote(url: job.remote.url, in: scratch.repository, hooks: hooks)
        try remote.connect(.fetch)
        defer { remote.disconnect() }
        let heads = try remote.advertisedHeads()
        let listing = Listing(heads: heads, defaultBranch: try? remote.defaultBranch())
        let cached = Dictionary(deciding.cached.heads.map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
        let decision = FetchDecision(heads: heads, defaultBranch: listing.defaultBranch, patterns: deciding.patterns, cached: cached)
        guard decision.changes else { return FetchJob.Result(bytes: 0, seeded: [], answers: nil, listing: listing) }
        for name in decision.stale { try repository.deleteReference(name) }
        if !decision.missing.isEmpty {
            reporter.note(.progress("fetching \(decision.missing.count) ref\(decision.missing.count == 1 ? "" : "s")"))
            // With none of the old tips in the cache, every cached ref is offered, as libgit2 would.
            try scratch.offer(decision.haves ?? Array(Set(cached.values)))
            let durable = decision.refspecs.contains { $0.contains(":refs/gitmirror/") }
            try unsynced(unless: durable, cache: job.cache) {
                try remote.fetch(refspecs: decision.refspecs, durable: durable, refsInto: repository, adopt: scratch.adoptPacks)
            }
        }
        let answers = try decision.questions.map { try answer($0, cachePath: job.cache, reporter: reporter) }
        return FetchJob.Result(bytes: hooks.receivedBytes, seeded: [], answers: answers, listing: listing)
    }
}
