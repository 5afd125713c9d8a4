import Foundation
import Git

/// Steps 2 and 3 of a sync (DESIGN, "One sync of one repository"): list the primary, fetch what changed
/// into the cache, and seed empty secondaries from a first fetch's pack.
extension RepositorySync {
    /// Lists the primary, fetches what changed into the cache, and returns the
    /// primary's refs as the cache now holds them. Into an empty cache, the pack also streams to the
    /// empty secondaries it can reach as it arrives; `seeded` gets what each of them accepted.
    /// `cacheRefs`: the cache's refs as this run read them already (it holds the lock: they are still so).
    func fetchPrimary(_ mirror: Mirror, report: inout RemoteReport, seeded: inout [String: SeedOutcome],
                      known: inout [AncestryQuestion: AncestryAnswer], cacheRefs: (() -> [String: ObjectID]?)? = nil) throws -> PrimaryRefs {
        let endpoint = try context.credentials.endpoint(for: mirror.primary, config: config)
        let limits = Workers.Limits(timeout: mirror.primary.policy.timeout, stall: mirror.primary.policy.stallTimeout)
        let patterns = Array(Set(mirror.secondaries.flatMap(\.policy.refs))).sorted()
        let cachePath = context.cachePath(mirror)
        // The cache is opened only when it is to change: a pass where nothing moved reads its refs once.
        var opened: Repository?
        func cache() throws -> Repository {
            if let opened { return opened }
            let repository = try context.gitCall { try Repository.openOrCreateBare(at: cachePath) }
            opened = repository
            return repository
        }

        let listed: Listing
        let everything: [String: ObjectID]
        var together: FetchJob.Result?
        if let cached = listsOnFetchConnection(mirror, cacheRefs: cacheRefs) {
            // One job lists the primary and, when something moved, fetches it on the same connection.
            progress(mirror.name, "primary", "listing refs")
            var fetch = FetchJob(remote: endpoint, cache: cachePath, refspecs: [])
            fetch.deciding = FetchJob.Deciding(patterns: patterns, cached: Listing(heads: cached.map { RemoteHead(name: $0.key, id: $0.value) }))
            // The pushes' workers start once the worker says it fetches (nothing moved: none is needed).
            let prestarted = Guarded(false)
            let result = try context.run(fetch, on: mirror.primary, repository: mirror.name, limits: limits) { [self] note in
                guard case .progress(let line) = note, line.hasPrefix("fetching "),
                      !prestarted.withLock({ (started: inout Bool) -> Bool in defer { started = true }; return started }) else { return }
                prestartTransfers(mirror)
            }
            guard let listing = result.listing else { throw SyncFailure(.internal, "the fetch's worker sent no listing of the primary") }
            (listed, everything, together) = (listing, cached, result)
        } else {
            progress(mirror.name, "primary", "listing refs")
            listed = try context.run(ListJob(remote: endpoint), on: mirror.primary, repository: mirror.name, limits: limits)
            // An empty primary changes nothing: not even the cache is made.
            everything = !listed.heads.contains(where: { $0.name.hasPrefix("refs/") }) ? [:]
                : try cacheRefs?() ?? context.gitCall { try cache().references(matching: "refs/*") }
        }
        report.head = listed.defaultBranch
        let decision = FetchDecision(heads: listed.heads, defaultBranch: listed.defaultBranch, patterns: patterns, cached: everything)
        let wanted = decision.wanted
        var leftOut = decision.leftOut
        defer { Self.reportLeftOut(leftOut, primary: wanted, in: &report) }
        guard !decision.primaryEmpty else {
            throw SyncFailure(.primaryEmpty, "the primary \(mirror.primary.url) advertises no refs; nothing was fetched, pushed or deleted anywhere. Check that the primary repository is intact")
        }

        var changed = decision.changes
        if let together {
            report.bytes = together.bytes
            if let questions = decision.questions, let answers = together.answers, answers.count == questions.count {
                known.merge(zip(questions, answers)) { _, new in new }
            }
        } else {
            for name in decision.stale {
                let repository = try cache()
                try context.gitCall { try repository.deleteReference(name) }
            }
            if !decision.missing.isEmpty {
                try fetch(mirror, decision, endpoint: endpoint, limits: limits, report: &report, seeded: &seeded, known: &known,
                          firstFetch: everything.isEmpty)
                opened = nil
                changed = true
            }
        }
        var source: [String: ObjectID] = [:]
        let now: [String: ObjectID]
        do {
            now = changed ? try RefFiles.read(gitDirectory: cachePath) : everything
        } catch {
            throw SyncFailure(.internal, "the cache: \(error)")
        }
        source.reserveCapacity(wanted.count)
        var unstored: [(name: String, problem: String)] = []
        for (name, advertised) in wanted {
            guard let id = now[name] else {
                // The cache would not store it (git refuses a branch that points at a blob or a tree): that ref fails alone.
                unstored.append((name, "the cache would not store it (a branch must point at a commit; this one points at \(advertised.hex))"))
                continue
            }
            source[name] = id
        }
        // In git's order, as the rest: sorting every name (20,000) for the few that fail was most of a no-op's work here.
        leftOut += unstored.sorted { RefName.precedes($0.name, $1.name) }
        return PrimaryRefs(ids: source, order: unstored.isEmpty ? decision.wantedOrder : decision.wantedOrder.filter { source[$0] != nil })
    }

    /// The fetch of what `decision` says is missing, after a listing of its own (a first fetch, whose
    /// pack may stream to empty secondaries; a local primary; a pass over many repositories).
    private func fetch(_ mirror: Mirror, _ decision: FetchDecision, endpoint: Endpoint, limits: Workers.Limits, report: inout RemoteReport,
                       seeded: inout [String: SeedOutcome], known: inout [AncestryQuestion: AncestryAnswer], firstFetch: Bool) throws {
        let missing = decision.missing
        progress(mirror.name, "primary", "fetching \(missing.count) ref\(missing.count == 1 ? "" : "s")")
        var fetch = FetchJob(remote: endpoint, cache: context.cachePath(mirror), refspecs: decision.refspecs)
        // Offered the old tips of what moved (and the default branch's), the primary sends what is new
        // on them; with none of those in the cache, every cached ref is offered (FetchScratch).
        fetch.haves = decision.haves
        fetch.questions = decision.questions
        // With no ref at all in the cache, no object is offered to the primary: its pack is complete.
        if firstFetch && !options.planOnly {
            let targets = seedTargets(mirror, wanted: decision.wanted, order: decision.wantedOrder)
            let stalls = mirror.secondaries.filter { spec in targets.contains { $0.name == spec.name } }.map(\.policy.stallTimeout)
            if let stall = stalls.min() {
                fetch.seeding = FetchJob.Seeding(targets: targets, stall: stall,
                                                 deadline: max(mirror.primary.policy.timeout * 0.8, mirror.primary.policy.timeout - 60))
            }
        }
        prestartTransfers(mirror)
        let result = try context.run(fetch, on: mirror.primary, repository: mirror.name, limits: limits)
        report.bytes = result.bytes
        if let questions = fetch.questions, let answers = result.answers, answers.count == questions.count {
            known.merge(zip(questions, answers)) { _, new in new }
        }
        for outcome in result.seeded {
            seeded[outcome.name] = outcome
            if !outcome.created.isEmpty || outcome.note != nil {
                let took = "took the primary's pack as it arrived: \(outcome.created.count) ref\(outcome.created.count == 1 ? "" : "s") created"
                progress(mirror.name, outcome.name, outcome.note.map { "\(took); \($0): the rest is pushed as usual" } ?? took)
            }
        }
    }

    /// The cache's refs, when the primary is to be listed on the fetch's own connection: a run of a few
    /// repositories, or one a hook started (something moved), whose cache has refs and is not too many
    /// to send; a primary reached over the network. Otherwise the listing is a job of its own (in a
    /// shared listing worker, many at once in a pass) and the fetch follows only when something moved.
    func listsOnFetchConnection(_ mirror: Mirror, cacheRefs: (() -> [String: ObjectID]?)?) -> [String: ObjectID]? {
        guard options.listOnFetchConnection, !options.planOnly, let cacheRefs,
              [.git, .ssh, .http, .https].contains(mirror.primary.url.scheme),
              let cached = cacheRefs(), !cached.isEmpty, cached.count <= 4096 else { return nil }
        return cached
    }

    /// Workers for the pushes that follow the fetch start while it runs: each push would otherwise wait
    /// for its process after the fetch (exec, the dynamic linker, Swift's runtime). The fetch's own worker
    /// comes back to the pool before the pushes, so it counts as one of theirs. The processes are started
    /// on a thread of their own: three spawns in a row held the fetch back ~40 ms.
    func prestartTransfers(_ mirror: Mirror) {
        guard options.prestartWorkers, !options.planOnly else { return }
        var counts: [String: Int] = [:]
        for secondary in mirror.secondaries.prefix(config.maxParallelPushes) {
            counts[context.credentials.trustStore(for: secondary, config: config), default: 0] += 1
        }
        let plan = counts.map { trust, count in (trust, count - context.workers.idleCount(trust: trust)) }.filter { $0.1 > 0 }
        guard !plan.isEmpty else { return }
        let workers = context.workers
        Thread.detachNewThread {
            for (trust, count) in plan { workers.prestart(more: count, trust: trust) }
        }
    }

    /// The primary's refs that could not be mirrored, each a failed ref of the primary's report (in its
    /// history), and one `rejected` failure naming the first: the other refs go on to the secondaries.
    static func reportLeftOut(_ leftOut: [(name: String, problem: String)], primary wanted: [String: ObjectID], in report: inout RemoteReport) {
        guard let first = leftOut.first else { return }
        for entry in leftOut {
            report.refs.append(RefOutcome(ref: entry.name, action: .create, old: nil, new: wanted[entry.name], outcome: .failed,
                                          message: "cannot be mirrored: \(entry.problem)"))
        }
        let count = leftOut.count
        report.result = .failed
        report.failure = SyncFailure(.rejected, "\(count) ref\(count == 1 ? "" : "s") of the primary cannot be mirrored and \(count == 1 ? "was" : "were") left out: \(RefName.shown(first.name)): \(first.problem)\(count > 1 ? " (and \(count - 1) more: gitmirror history REPO --remote primary)" : ""); every other ref was mirrored. Rename or repoint \(count == 1 ? "it" : "them") on the primary")
    }

    /// The empty secondaries the primary's pack may stream to during the fetch (first seed): those this
    /// process reaches itself (git://, SSH through OpenSSH, HTTP(S), a local path), with the refs the plan would
    /// create on them. At most max_parallel_pushes of them, as for pushes.
    func seedTargets(_ mirror: Mirror, wanted: [String: ObjectID], order: [String]) -> [SeedTarget] {
        var targets: [SeedTarget] = []
        // A secondary with lfs: true gets its LFS objects before any ref: it is never seeded from the fetch.
        for secondary in mirror.secondaries where targets.count < config.maxParallelPushes && !secondary.policy.lfs {
            let url = secondary.url
            let transport: SeedTarget.Transport = switch url.scheme {
            case .file: .file
            case .git: .git
            case .ssh: .ssh
            case .http, .https: .http
            }
            guard let access = try? context.credentials.endpoint(for: secondary, config: config), SeedSession.reaches(access) else { continue }
            let forge = Forge.of(url)
            var refs = RefPlan.make(source: wanted, target: [:], policy: secondary.policy, sourceOrder: order) { _, _ in false }
                .refs.filter { $0.action == .create && forge.refusal(of: $0.ref) == nil }.map(\.ref)
            // A forge that takes at most so many ref updates in one push (CodeCommit: 4,000) gets that many
            // from the pack (branches first); the rest are pushed afterwards, in batches, as usual.
            if let most = forge.maxRefUpdatesPerPush, refs.count > most {
                refs = Array(refs.sorted { ($0.hasPrefix("refs/heads/") ? 0 : 1, $0) < ($1.hasPrefix("refs/heads/") ? 0 : 1, $1) }.prefix(most))
            }
            guard !refs.isEmpty else { continue }
            targets.append(SeedTarget(name: secondary.name, access: access, transport: transport, user: url.user, host: url.host,
                                      port: url.port, path: url.path, refs: refs))
        }
        return targets
    }
}

/// The primary's refs as the cache holds them after the fetch, with their names in git's order: each
/// secondary's plan walks them in that order, and 20,000 names are not sorted again for each.
struct PrimaryRefs {
    var ids: [String: ObjectID]
    var order: [String]
}
