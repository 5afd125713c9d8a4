import Git

public struct PlannedRef: Codable, Sendable, Equatable {
    public var ref: String
    public var action: RefAction
    /// The secondary's value before the sync (nil: absent).
    public var old: ObjectID?
    /// The value the sync gives it (nil: deleted or untouched).
    public var new: ObjectID?
    public var reason: String?
    /// The primary's ref a `beside` ref mirrors.
    public var from: String?

    public init(ref: String, action: RefAction, old: ObjectID?, new: ObjectID?, reason: String? = nil, from: String? = nil) {
        (self.ref, self.action, self.old, self.new, self.reason, self.from) = (ref, action, old, new, reason, from)
    }

    /// The value the secondary should hold once the plan is carried out.
    public var expectedAfter: ObjectID? {
        switch action {
        case .create, .fastForward, .force, .beside: return new
        case .delete: return nil
        default: return old
        }
    }
}

/// The per-ref plan for one secondary, computed before anything is pushed.
public struct RefPlan: Codable, Sendable, Equatable {
    public var refs: [PlannedRef]
    /// Deletions planned beyond `max_deletes`: none of them is carried out.
    public var deletionsOverCap: Int

    public var changes: [PlannedRef] { refs.filter { $0.action.pushes } }
    public var diverged: [PlannedRef] { refs.filter { $0.action == .diverged } }

    public func count(_ action: RefAction) -> Int { refs.filter { $0.action == action }.count }

    /// Plans every ref.
    /// - Parameters:
    ///   - source: the primary's refs (as fetched into the cache).
    ///   - target: the secondary's refs as it advertises them.
    ///   - mirrored: what gitmirror last gave each of the secondary's refs it asks about (the refs the
    ///     primary lacks; with append_only, the branches that diverged), as the journal says; a ref
    ///     missing here only the secondary ever had. nil: not known.
    ///   - sourceOrder: `source`'s names in git's order, when the caller has them (a plan for each
    ///     secondary of a 20,000-ref primary need not sort them again each time).
    ///   - isFastForward: whether moving from `old` to `new` only adds commits
    ///     (false when `old` is unknown locally: the secondary has commits the primary lacks).
    public static func make(source: [String: ObjectID], target: [String: ObjectID], policy: Policy, mirrored: [String: ObjectID]? = nil,
                            sourceOrder: [String]? = nil, isFastForward: (_ old: ObjectID, _ new: ObjectID) -> Bool) -> RefPlan {
        var refs: [PlannedRef] = []
        let names: [String]
        if let sourceOrder, sourceOrder.count == source.count {
            let extra = target.keys.filter { source[$0] == nil }.sorted(by: RefName.precedes)
            names = extra.isEmpty ? sourceOrder : merged(sourceOrder, extra)
        } else {
            names = Set(source.keys).union(target.keys).sorted(by: RefName.precedes)
        }
        for name in names {
            let new = source[name], old = target[name]
            // append_only: the refs beside rewritten branches are planned with their branch, below.
            if policy.appendOnly && name.hasPrefix(besidePrefix) && new == nil { continue }
            guard RefFilter.matches(name, policy.refs) else {
                if old != nil { refs.append(PlannedRef(ref: name, action: .skip, old: old, new: nil, reason: "outside the configured refs")) }
                continue
            }
            switch (old, new) {
            case (nil, let new?):
                refs.append(PlannedRef(ref: name, action: .create, old: nil, new: new))
            case (let old?, let new?) where old == new:
                refs.append(PlannedRef(ref: name, action: .upToDate, old: old, new: new))
            case (let old?, let new?):
                let isTag = name.hasPrefix("refs/tags/")
                if !isTag && isFastForward(old, new) {
                    refs.append(PlannedRef(ref: name, action: .fastForward, old: old, new: new))
                } else if policy.appendOnly && name.hasPrefix("refs/heads/") && mirrored?[name] == old {
                    // The primary rewrote what gitmirror mirrored, on a secondary that keeps every history.
                    let beside = besidePlan(name, new: new, target: target, isFastForward: isFastForward)
                    refs.append(PlannedRef(ref: name, action: .keep, old: old, new: nil,
                                           reason: "rewritten on the primary; kept here (append_only), the primary's new history is at \(beside.ref)"))
                    refs.append(beside)
                } else {
                    let why = isTag ? "the tag points elsewhere on the primary" : "the secondary has commits the primary lacks"
                    refs.append(policy.force
                        ? PlannedRef(ref: name, action: .force, old: old, new: new, reason: "\(why); overwritten (force: true), old tip kept as a backup ref")
                        : PlannedRef(ref: name, action: .diverged, old: old, new: new, reason: "\(why); kept (set force: true to overwrite it)"))
                }
            case (let old?, nil):
                let gone = mirrored.map { $0[name] != nil } ?? true
                    ? "deleted on the primary" : "not on the primary, and gitmirror has no record of mirroring it here"
                if policy.prune && !source.isEmpty {
                    refs.append(PlannedRef(ref: name, action: .delete, old: old, new: nil, reason: gone))
                } else {
                    refs.append(PlannedRef(ref: name, action: .keep, old: old, new: nil, reason: "\(gone); kept (prune is off)"))
                }
            case (nil, nil):
                break
            }
        }
        let deletions = refs.filter { $0.action == .delete }.count
        var overCap = 0
        if deletions > policy.maxDeletes {
            overCap = deletions
            for index in refs.indices where refs[index].action == .delete {
                refs[index].action = .keep
                refs[index].new = nil
                refs[index].reason = "\(refs[index].reason ?? "deleted on the primary"); kept because \(deletions) deletions exceed max_deletes (\(policy.maxDeletes))"
            }
        }
        return RefPlan(refs: refs, deletionsOverCap: overCap)
    }

    /// Two lists of distinct names, each in git's order, as one in that order.
    static func merged(_ a: [String], _ b: [String]) -> [String] {
        var result: [String] = []
        result.reserveCapacity(a.count + b.count)
        var i = a.startIndex, j = b.startIndex
        while i < a.endIndex && j < b.endIndex {
            if RefName.precedes(b[j], a[i]) { result.append(b[j]); j += 1 } else { result.append(a[i]); i += 1 }
        }
        result += a[i...]
        result += b[j...]
        return result
    }

    /// Where append_only mirrors a rewritten branch's new history: `refs/rewritten/heads/main`, then
    /// `…/main-2` once that one cannot follow (a second rewrite), and so on.
    public static let besidePrefix = "refs/rewritten/"

    public static func besideName(_ ref: String, _ number: Int) -> String {
        besidePrefix + ref.dropFirst("refs/".count) + (number == 1 ? "" : "-\(number)")
    }

    /// The beside refs of `ref` the secondary holds, in order.
    public static func besideRefs(of ref: String, in target: [String: ObjectID]) -> [(name: String, tip: ObjectID)] {
        var found: [(String, ObjectID)] = []
        var number = 1
        while let tip = target[besideName(ref, number)] {
            found.append((besideName(ref, number), tip))
            number += 1
        }
        return found
    }

    /// The newest beside ref follows the primary's branch while it can (created, fast-forwarded or up
    /// to date); after another rewrite a new one starts.
    static func besidePlan(_ ref: String, new: ObjectID, target: [String: ObjectID],
                           isFastForward: (ObjectID, ObjectID) -> Bool) -> PlannedRef {
        let existing = besideRefs(of: ref, in: target)
        let why = "the primary's history of \(ref), which it rewrote (append_only)"
        guard let last = existing.last else {
            return PlannedRef(ref: besideName(ref, 1), action: .beside, old: nil, new: new, reason: why, from: ref)
        }
        if last.tip == new { return PlannedRef(ref: last.name, action: .upToDate, old: new, new: new, from: ref) }
        if isFastForward(last.tip, new) { return PlannedRef(ref: last.name, action: .beside, old: last.tip, new: new, reason: why, from: ref) }
        return PlannedRef(ref: besideName(ref, existing.count + 1), action: .beside, old: nil, new: new, reason: why, from: ref)
    }
}
