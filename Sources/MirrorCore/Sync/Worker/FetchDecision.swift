import Foundation
import Git

/// What a fetch of the primary takes into the cache, decided from the primary's advertisement and the
/// cache's refs: by the supervisor after a listing, or by the fetch's worker on the listing's own
/// connection (FetchJob.deciding), which the supervisor then decides again from the same inputs to
/// report it. The same inputs give the same decision on both sides.
struct FetchDecision {
    /// The primary's refs the secondaries want (their `refs:` patterns), but for those left out.
    var wanted: [String: ObjectID]
    /// `wanted`'s names in git's order (the advertisement's, which is).
    var wantedOrder: [String]
    /// Refs the cache cannot hold (their pushers chose the names), with why: each fails alone, is not
    /// fetched, and the secondaries keep whatever they have of it.
    var leftOut: [(name: String, problem: String)]
    /// The primary advertises no ref: an outage or an accident, never an instruction to delete
    /// everything. Nothing is fetched or deleted.
    var primaryEmpty: Bool
    /// The cache's refs the primary no longer has: they leave the cache first (their objects stay), as
    /// `git fetch --prune` does, so that a branch renamed into a folder (`a` → `a/b`, or back) has room.
    var stale: [String]
    /// The wanted refs whose value in the cache is not the primary's, in git's order.
    var missing: [String]
    var refspecs: [String]
    /// Offered to the primary as what the cache has: the old tips of what moved and the default
    /// branch's, so that it sends what is new on them. Nil: none of those is in the cache.
    var haves: [ObjectID]?
    /// Whether each branch that moved moved forward, asked of the fetch's worker once it has the
    /// objects: each secondary still at the old tip would otherwise ask a worker of its own.
    var questions: [AncestryQuestion]?

    /// Whether the cache changes at all.
    var changes: Bool { !primaryEmpty && (!stale.isEmpty || !missing.isEmpty) }

    /// `cached`: the cache's refs (its own `refs/gitmirror/` backups are never touched here).
    init(heads: [RemoteHead], defaultBranch: String?, patterns: [String], cached everything: [String: ObjectID]) {
        let matching = heads.filter { RefFilter.matches($0.name, patterns) }
        var wanted = Dictionary(matching.map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
        let leftOut = wanted.keys.compactMap { name in RefName.problem(name).map { (name: name, problem: $0) } }
            .sorted { RefName.precedes($0.name, $1.name) }
        for entry in leftOut { wanted[entry.name] = nil }
        self.wanted = wanted
        var order = RefName.ordered(matching.map(\.name))
        if !leftOut.isEmpty || order.count != wanted.count {
            // A name left out, or advertised twice (a hostile server's): each wanted name once.
            var seen = Set<String>()
            order = order.filter { wanted[$0] != nil && seen.insert($0).inserted }
        }
        wantedOrder = order
        self.leftOut = leftOut
        primaryEmpty = !heads.contains { $0.name.hasPrefix("refs/") }
        guard !primaryEmpty else {
            (stale, missing, refspecs) = ([], [], [])
            return
        }
        let cached = everything.filter { !$0.key.hasPrefix("refs/gitmirror/") }
        stale = cached.keys.filter { wanted[$0] == nil }.sorted(by: RefName.precedes)
        let missing = order.filter { cached[$0] != wanted[$0] }
        self.missing = missing
        refspecs = Self.refspecs(missing: missing, patterns: patterns, allHoldable: leftOut.isEmpty)
        let haves = Set(missing.compactMap { cached[$0] } + [defaultBranch.flatMap { cached[$0] }].compactMap { $0 })
        self.haves = haves.isEmpty ? nil : haves.sorted()
        let questions = Set(missing.compactMap { name -> AncestryQuestion? in
            guard !name.hasPrefix("refs/tags/"), let old = cached[name], let new = wanted[name], old != new else { return nil }
            return AncestryQuestion(old: old, new: new)
        })
        self.questions = questions.isEmpty ? nil : questions.sorted { ($0.old, $0.new) < ($1.old, $1.new) }
    }

    /// One refspec per ref the cache lacks — unless they are many: then the ref filters themselves
    /// (`+refs/heads/*:refs/heads/*`), where they reach no host namespace and every ref they match may
    /// be held. libgit2 matches each advertised ref against each refspec: with 20,000 refs, minutes.
    static func refspecs(missing: [String], patterns: [String], allHoldable: Bool) -> [String] {
        guard missing.count > 64, allHoldable, patterns.allSatisfy({ $0.hasPrefix("refs/heads/") || $0.hasPrefix("refs/tags/") }) else {
            return missing.map { "+\($0):\($0)" }
        }
        return patterns.map { "+\($0):\($0)" }
    }
}
