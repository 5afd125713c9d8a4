import Foundation
import Git

/// The work on one secondary, in DESIGN.md's order: list → plan → back up → transfer → verify →
/// conclude (the caller records). Each step is a method filling in `report`. How the pack travels
/// is the worker's `PackTransfer`: nothing here — the plan, the safety rules, what is recorded —
/// depends on which transfer ran.
struct SecondarySync {
    let context: SyncContext
    let mirror: Mirror
    let secondary: RemoteSpec
    /// The primary's refs as the cache holds them.
    let source: [String: ObjectID]
    /// `source`'s names in git's order.
    var sourceOrder: [String]?
    var report: RemoteReport
    /// The secondary's refs after the work (the final listing), for its fingerprint.
    var finalHeads: [RemoteHead]?
    /// Refs this secondary accepted while the primary's pack streamed to it (first seed).
    var seeded: [String: ObjectID] = [:]
    /// Ancestry answered already, by the fetch's worker (the old and new tips of the refs that moved).
    var known: [AncestryQuestion: AncestryAnswer] = [:]
    /// The branch the primary's HEAD points at.
    var primaryHead: String?
    /// This secondary's listing, started with the primary's (Prelisting).
    var listed: Prelisting.Pending?
    /// The primary's refs that could not be mirrored (RefName): left as they are here, never deleted.
    var untouchable: Set<String> = []
    /// This run's id (nil when nothing is recorded: plan).
    var runId: Int64?
    static let seededMessage = "created from the primary's pack as it arrived"

    init(context: SyncContext, mirror: Mirror, secondary: RemoteSpec, source: [String: ObjectID], report: RemoteReport) {
        self.context = context
        self.mirror = mirror
        self.secondary = secondary
        self.source = source
        self.report = report
    }

    var limits: Workers.Limits {
        Workers.Limits(timeout: secondary.policy.timeout, stall: secondary.policy.stallTimeout)
    }

    func say(_ message: String) { context.progress(mirror.name, secondary.name, message) }

    /// Runs a job for this secondary: one that reaches it within its limits, one on the cache within the cache's.
    func run<J: Job>(_ job: J) throws(SyncFailure) -> J.Result {
        try context.run(job, on: secondary, repository: mirror.name, limits: J.kind == .cache ? context.cacheLimits(secondary) : limits)
    }

    mutating func run() throws {
        let access = try context.credentials.endpoint(for: secondary, config: context.config)
        let (heads, listedHead) = try list(access)
        report.head = listedHead
        // An earlier run that stopped during its push left pending rows: what this remote holds now settles them.
        if !context.options.planOnly { context.settlePending(mirror, secondary, heads: heads, runId: runId) }
        let plan = try self.plan(heads)
        if context.options.planOnly {
            // What a sync would end in: diverged refs kept, or deletions over the cap, are out of step.
            conclude(plan, changed: false)
            if report.result == .upToDate { report.result = .planned }
            return
        }
        try backUp(access)
        refuseWhatTheHostRefuses()
        let changes = report.refs.filter { $0.outcome == .planned }
        if changes.isEmpty {
            finalHeads = heads
        } else {
            if secondary.policy.lfs { try mirrorLFS(changes, holding: heads) }
            try context.journalPending(changes.filter { $0.action == .force || $0.action == .delete }, of: mirror, secondary, runId: runId)
            let sent = try transfer(changes, access: access)
            verify(sent)
        }
        conclude(plan, changed: !changes.isEmpty || report.refs.contains { $0.outcome == .applied })
        settleHead(holding: Set((finalHeads ?? heads).map(\.name)))
    }

    // MARK: LFS

    /// The LFS objects the pushed history points to and the secondary lacks go first (LFSTransfer).
    mutating func mirrorLFS(_ changes: [RefOutcome], holding heads: [RemoteHead]) throws {
        let tips = Array(Set(changes.filter { $0.action != .delete }.compactMap(\.new))).sorted()
        guard !tips.isEmpty else { return }
        let known = Array(Set(heads.filter { $0.name.hasPrefix("refs/") }.map(\.id))).sorted()
        let pointers = try run(LFSScanJob(cache: context.cachePath(mirror), tips: tips, known: known))
        guard !pointers.isEmpty else { return }
        let (context, repository, remote) = (self.context, mirror.name, secondary.name)
        let transfer = LFSTransfer(context: context, mirror: mirror, say: { context.progress(repository, remote, $0) })
        let sent = try transfer.mirror(pointers, to: secondary)
        report.bytes += sent.bytes
        if sent.objects > 0 {
            report.lfsObjects = sent.objects
        }
    }

    // MARK: default branch

    /// Gives the secondary the primary's default branch once it holds that branch: through the API
    /// where there is one (CodeCommit, GitHub, GitLab, Gitea), by writing HEAD on a local path; where
    /// there is none, the report says how they differ (`status` shows it). Never a failure of the refs.
    mutating func settleHead(holding refs: Set<String>) {
        guard let wanted = primaryHead, wanted != report.head, refs.contains(wanted), source[wanted] != nil else { return }
        let branch = String(wanted.dropFirst("refs/heads/".count))
        let was = report.head.map { "HEAD pointed at \($0.replacingOccurrences(of: "refs/heads/", with: ""))" } ?? "HEAD pointed at no branch it holds"
        do {
            if try context.setDefaultBranch(of: secondary, to: branch, repository: mirror.name) {
                report.head = wanted
                report.headNote = "default branch set to \(branch) (\(was))"
            } else if !toldBefore(wanted) {
                report.headNote = "\(was), the primary's at \(branch); gitmirror has no API to set it on this server: run git symbolic-ref HEAD \(wanted) there"
            }
        } catch {
            let failure = error as? SyncFailure ?? SyncFailure(.internal, "\(error)")
            report.headNote = context.redactor.redact("\(was), the primary's at \(branch), and setting it failed: \(failure.description)")
        }
        if let note = report.headNote { say(note) }
    }

    /// Whether the last run saw the same two HEADs (so it gave the same advice): advice is given once
    /// per change, and `status` keeps showing the difference meanwhile.
    func toldBefore(_ wanted: String) -> Bool {
        guard let store = context.store,
              let before = try? store.remoteState(repository: mirror.name, remote: secondary.name), before.lastRunId != nil,
              let primaryBefore = try? store.remoteState(repository: mirror.name, remote: "primary") else { return false }
        return before.head == report.head && primaryBefore.head == wanted
    }

    // MARK: list

    /// The secondary's refs and the branch its HEAD points at; a missing repository is created first
    /// where the configuration says so.
    func list(_ access: Endpoint) throws -> (heads: [RemoteHead], head: String?) {
        say("listing refs")
        do {
            let result = try listed.map { try $0.wait().get() } ?? run(ListJob(remote: access))
            return (result.heads, result.defaultBranch)
        } catch let failure as SyncFailure where failure.errorClass == .notFound && secondary.create && !context.options.planOnly {
            try context.createRepository(secondary, repository: mirror.name)
            let result = try run(ListJob(remote: access))
            return (result.heads, result.defaultBranch)
        }
    }

    // MARK: plan

    /// Plans every ref (the ancestry answers come from a worker: reading objects can hang on a
    /// damaged cache) and fills the report's rows; refs that cannot be created are refused here.
    mutating func plan(_ heads: [RemoteHead]) throws -> RefPlan {
        let target = Dictionary(heads.filter { $0.name.hasPrefix("refs/") && !untouchable.contains($0.name) }.map { ($0.name, $0.id) },
                                uniquingKeysWith: { a, _ in a })
        let answers = try ancestry(target: target)
        // What gitmirror put there, from the journal: where a ref the primary lacks came from (for its
        // note), and with append_only, whether a diverged branch is one the primary rewrote.
        let asked = target.keys.filter { name in
            source[name] == nil || (secondary.policy.appendOnly && name.hasPrefix("refs/heads/") && source[name] != target[name])
        }.sorted(by: RefName.precedes)
        let mirrored = asked.isEmpty ? nil : (try? context.store?.refsMirrored(repository: mirror.name, remote: secondary.name, among: asked))?
            .compactMapValues { ObjectID(hex: $0) }
        let plan = RefPlan.make(source: source, target: target, policy: secondary.policy, mirrored: mirrored, sourceOrder: sourceOrder) { old, new in
            answers[AncestryQuestion(old: old, new: new)]?.fastForward ?? false
        }
        report.skipped = plan.count(.skip)
        report.upToDate = plan.count(.upToDate)
        let accepted = plan.diverged.isEmpty ? [:] : (try? context.store?.acceptedDivergences(repository: mirror.name, remote: secondary.name)) ?? [:]
        report.refs = plan.refs.filter { $0.action != .skip && $0.action != .upToDate }.map { planned in
            RefOutcome(ref: planned.ref, action: planned.action, old: planned.old, new: planned.new,
                       outcome: planned.action.pushes ? .planned : .kept, message: planned.reason, backupRef: nil, from: planned.from)
        }
        // A divergence an operator accepted stays as it is, not counted, while neither side has moved.
        for index in report.refs.indices where report.refs[index].action == .diverged {
            let ref = report.refs[index]
            guard let accepted = accepted[ref.ref], accepted.secondaryOid == ref.old?.hex, accepted.primaryOid == ref.new?.hex else { continue }
            report.refs[index].action = .keep
            report.refs[index].message = "diverged; accepted by an operator on \(UTCTime.iso8601(accepted.acceptedAt)), left as it is until either side moves"
        }
        // Created in this run by the primary's pack as it arrived, and listed now with that value:
        // verified like any push (the listing above is the one after it).
        for planned in plan.refs where planned.action == .upToDate && seeded[planned.ref] != nil && seeded[planned.ref] == planned.old {
            report.upToDate -= 1
            report.refs.append(RefOutcome(ref: planned.ref, action: .create, old: nil, new: planned.new, outcome: .applied,
                                          message: Self.seededMessage, backupRef: nil))
        }
        // A ref whose name is taken as a folder (or the reverse) by a ref the secondary keeps cannot be
        // created there: it fails alone, saying why, and the rest goes on. (Those the pack created as
        // it arrived are there already.)
        let creates = report.refs.indices.filter { report.refs[$0].action == .create && report.refs[$0].outcome == .planned }
        let keptAfter = creates.isEmpty ? [] : Set(plan.refs.compactMap { $0.expectedAfter == nil ? nil : $0.ref })
        let keptSorted = keptAfter.sorted(by: RefName.precedes)
        for index in creates {
            let name = report.refs[index].ref
            if let blocker = Self.folderClash(name, kept: keptAfter, sorted: keptSorted) {
                report.refs[index].outcome = .rejected
                report.refs[index].message = "cannot be created on the secondary while \(blocker) exists there (a ref and a folder of the same name); it was deleted or renamed on the primary: set prune: true to delete it, or delete it on the secondary"
            }
        }
        return plan
    }

    /// Fast-forward answers for every (old, new) pair the plan will ask about, from a worker.
    func ancestry(target: [String: ObjectID]) throws -> [AncestryQuestion: AncestryAnswer] {
        var questions = Set(source.compactMap { name, new -> AncestryQuestion? in
            guard let old = target[name], old != new, !name.hasPrefix("refs/tags/"), RefFilter.matches(name, secondary.policy.refs) else { return nil }
            return AncestryQuestion(old: old, new: new)
        })
        // append_only: can the newest ref beside a rewritten branch follow it?
        if secondary.policy.appendOnly {
            for (name, new) in source where name.hasPrefix("refs/heads/") {
                if let last = RefPlan.besideRefs(of: name, in: target).last, last.tip != new { questions.insert(AncestryQuestion(old: last.tip, new: new)) }
            }
        }
        let answered = known.filter { questions.contains($0.key) }
        let sorted = questions.filter { answered[$0] == nil }.sorted { ($0.old, $0.new) < ($1.old, $1.new) }
        guard !sorted.isEmpty else { return answered }
        let answers = try run(AncestryJob(cache: context.cachePath(mirror), questions: sorted))
        guard answers.count == sorted.count else { throw SyncFailure(.internal, "the worker answered \(answers.count) of \(sorted.count) ancestry questions") }
        return answered.merging(zip(sorted, answers)) { first, _ in first }
    }

    /// A kept ref that takes `name`'s place as a folder (`refs/heads/a` for `refs/heads/a/b`) or that
    /// lives in the folder `name` would be (`refs/heads/a/b` for `refs/heads/a`): looked up by each
    /// parent folder and by a search in the sorted names, not by comparing every pair (20,000 refs).
    static func folderClash(_ name: String, kept: Set<String>, sorted: [String]) -> String? {
        var parent = name[...]
        while let slash = parent.lastIndex(of: "/") {
            parent = parent[..<slash]
            if kept.contains(String(parent)) { return String(parent) }
        }
        let folder = name + "/"
        var low = 0, high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if RefName.precedes(sorted[middle], folder) { low = middle + 1 } else { high = middle }
        }
        return low < sorted.count && sorted[low].hasPrefix(folder) ? sorted[low] : nil
    }

    // MARK: back up

    /// Saves the old tip of every ref the plan overwrites or deletes under `refs/gitmirror/backup/…`,
    /// fetching it from the secondary when the cache lacks it. A ref that cannot be backed up is not touched.
    mutating func backUp(_ access: Endpoint) throws {
        var wanted: [(index: Int, backup: BackupRef)] = []
        let overwritten = report.refs.indices.filter { report.refs[$0].action == .force || report.refs[$0].action == .delete }
        guard !overwritten.isEmpty else { return }
        let stamp = SyncContext.backupStamp()
        for index in overwritten {
            guard let old = report.refs[index].old else { continue }
            let ref = report.refs[index].ref
            // A tip an earlier run backed up (its overwrite then refused) keeps that backup: written again, not anew.
            let earlier = try? context.store?.backupRef(repository: mirror.name, remote: secondary.name, ref: ref, oldOid: old.hex)
            wanted.append((index, BackupRef(ref: earlier ?? "refs/gitmirror/backup/\(secondary.name)/\(ref)@\(stamp)", id: old,
                                            message: "gitmirror: backup of \(secondary.name) \(ref)")))
        }
        guard !wanted.isEmpty else { return }
        let backups = BackupJob(cache: context.cachePath(mirror), backups: wanted.map(\.backup))
        var missing = Set(try run(backups))
        if !missing.isEmpty {
            // The secondary holds commits the cache never had: fetch them from it, then write the refs.
            let refspecs = wanted.filter { missing.contains($0.backup.ref) }.map { "+\(report.refs[$0.index].ref):\($0.backup.ref)" }
            say("backing up \(missing.count) ref\(missing.count == 1 ? "" : "s") from the secondary")
            let fetched = Result { () throws(SyncFailure) in try run(FetchJob(remote: access, cache: context.cachePath(mirror), refspecs: refspecs)) }
            switch fetched {
            case .success:
                missing = Set(try run(backups))
            case .failure(let failure) where failure.cacheDamage == nil:
                for entry in wanted where missing.contains(entry.backup.ref) {
                    report.refs[entry.index].outcome = .failed
                    report.refs[entry.index].message = "not overwritten: its old tip could not be backed up (\(failure.message))"
                }
                missing = []
            case .failure(let failure):
                throw failure
            }
        }
        for entry in wanted {
            if missing.contains(entry.backup.ref) {
                report.refs[entry.index].outcome = .failed
                report.refs[entry.index].message = "not overwritten: its old tip \(entry.backup.id.short) could not be backed up (the secondary no longer has it)"
            } else if report.refs[entry.index].outcome == .planned {
                report.refs[entry.index].backupRef = entry.backup.ref
            }
        }
    }

    /// Refs the host is known to refuse are reported now, not sent.
    mutating func refuseWhatTheHostRefuses() {
        let forge = Forge.of(secondary.url)
        for index in report.refs.indices where report.refs[index].outcome == .planned {
            if let refusal = forge.refusal(of: report.refs[index].ref) {
                report.refs[index].outcome = .rejected
                report.refs[index].message = refusal
            }
        }
    }

    // MARK: transfer

    struct Sent {
        var verdicts: [String: PushOutcome] = [:]
        var serverMessages: [String] = []
        var final: [String: ObjectID] = [:]
    }

    /// Sends the planned changes (deletions first: a name freed by one, `a`, can then be taken by a
    /// folder, `a/b`, in the same push), in batches where the host caps ref updates per push
    /// (CodeCommit: 4,000). The worker's transfer lists the secondary again after each batch.
    mutating func transfer(_ changes: [RefOutcome], access: Endpoint) throws -> Sent {
        let ordered = changes.filter { $0.action == .delete } + changes.filter { $0.action != .delete }
        var sent = Sent()
        for batch in RepositorySync.batches(ordered, size: Forge.of(secondary.url).maxRefUpdatesPerPush) {
            let updates = batch.map { WireUpdate(ref: $0.ref, expectedOld: $0.old, new: $0.action == .delete ? nil : $0.new, force: $0.action == .force,
                                                 source: $0.from) }
            say("pushing \(batch.count) ref\(batch.count == 1 ? "" : "s")")
            let result = try push(PushJob(remote: access, cache: context.cachePath(mirror), updates: updates, transfer: .git))
            report.bytes += result.bytes
            finalHeads = result.heads
            sent.final = Dictionary(result.heads.map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
            for outcome in result.outcomes { sent.verdicts[outcome.ref] = outcome }
            sent.serverMessages += result.serverMessages
        }
        return sent
    }

    /// A push whose refusal, right after a listing with the same credentials worked, says the server reads but refuses pushes.
    func push(_ job: PushJob) throws(SyncFailure) -> PushJob.Result {
        switch Result(catching: { () throws(SyncFailure) in try run(job) }) {
        case .success(let result):
            return result
        case .failure(let failure) where Classification.refusesPushesOnly(failure.errorClass) && failure.errorClass != .readOnly:
            throw SyncFailure(.readOnly, "the repository can be read but refuses pushes: \(failure.message)")
        case .failure(let failure):
            throw failure
        }
    }

    // MARK: verify

    /// A ref is applied only when the server accepted it and the final listing shows it: a server
    /// that says "ok" but holds something else is a failure.
    mutating func verify(_ sent: Sent) {
        let pushed = report.refs.filter { $0.outcome == .planned }.map(\.ref)
        for index in report.refs.indices where report.refs[index].outcome == .planned {
            let ref = report.refs[index]
            let expected = ref.action == .delete ? nil : ref.new
            if let verdict = sent.verdicts[ref.ref], !verdict.accepted {
                report.refs[index].outcome = .rejected
                let reason = verdict.message ?? "rejected"
                let serverSaid = ServerLines.about(ref.ref, pushed: pushed, in: sent.serverMessages).joined(separator: " | ")
                report.refs[index].message = context.redactor.redact(serverSaid.isEmpty || verdict.reason == .moved ? reason : "\(reason) (server said: \(serverSaid))")
            } else if sent.final[ref.ref] != expected {
                report.refs[index].outcome = .failed
                let holds = sent.final[ref.ref].map { "holds \($0.short)" } ?? "does not have it"
                report.refs[index].message = "the server reported success but \(holds) after the push (expected \(expected?.short ?? "it deleted"))"
            } else {
                report.refs[index].outcome = .applied
            }
        }
    }

    // MARK: conclude

    /// The remote's result and, when it is out of step, the one class that says why — the most telling
    /// rejection first, then the deletion cap, then divergence.
    mutating func conclude(_ plan: RefPlan, changed: Bool) {
        let rejected = report.refs.filter { $0.outcome == .rejected || $0.outcome == .failed }
        let diverged = report.refs.filter { $0.action == .diverged }
        if !rejected.isEmpty {
            let list = rejected.prefix(5).map { "\($0.ref) (\($0.message ?? "rejected"))" }.joined(separator: "; ")
            let verdicts = rejected.map { Classification.rejection($0.message ?? "") }
            let chosen = verdicts.first { $0.0 != .rejected } ?? verdicts.first { $0.1 != nil } ?? (.rejected, nil)
            report.failure = SyncFailure(chosen.0, (chosen.1.map { "\($0). " } ?? "")
                                         + "\(rejected.count) ref\(rejected.count == 1 ? "" : "s") not updated: \(list)\(rejected.count > 5 ? "; …" : "")")
            report.result = .failed
        } else if plan.deletionsOverCap > 0 {
            report.failure = SyncFailure(.protected, "\(plan.deletionsOverCap) refs were deleted on the primary, more than max_deletes (\(secondary.policy.maxDeletes)) allows; none was deleted. If that is intended, raise max_deletes for '\(secondary.name)' and sync again")
            report.result = .failed
        } else if !diverged.isEmpty {
            let list = diverged.prefix(5).map(\.ref).joined(separator: ", ")
            report.failure = SyncFailure(.diverged, "\(diverged.count) ref\(diverged.count == 1 ? "" : "s") diverged on '\(secondary.name)' and kept: \(list)\(diverged.count > 5 ? ", …" : ""). Inspect them, then either delete them on the secondary or set force: true (the old tips are kept as backup refs)")
            report.result = .diverged
        } else {
            report.result = changed ? .ok : .upToDate
        }
    }
}
