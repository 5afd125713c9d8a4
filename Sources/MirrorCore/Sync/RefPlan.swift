import Git

public struct PlannedRef: Codable, Sendable, Equatable {
    public var ref: String
    public var action: RefAction
    /// The secondary's value before the sync (nil: absent).
    public var old: ObjectID?
    /// The value the sync gives it (nil: deleted or untouched).
    public var new: ObjectID?
    public var reason: String?

    public init(ref: String, action: RefAction, old: ObjectID?, new: ObjectID?, reason: String? = nil) {
        self.ref = ref
        self.action = action
        self.old = old
        self.new = new
        self.reason = reason
    }

    /// The value the secondary should hold once the plan is carried out.
    public var expectedAfter: ObjectID? {
        switch action {
        case .create, .fastForward, .force: return new
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
    ///   - mirrored: of the secondary's refs the primary does not have, those gitmirror once mirrored
    ///     there (the rest only the secondary ever had, as far as the journal knows); nil: not known.
    ///   - isFastForward: whether moving from `old` to `new` only adds commits
    ///     (false when `old` is unknown locally: the secondary has commits the primary lacks).
    public static func make(source: [String: ObjectID], target: [String: ObjectID], policy: Policy, mirrored: Set<String>? = nil,
                            isFastForward: (_ old: ObjectID, _ new: ObjectID) -> Bool) -> RefPlan {
        var refs: [PlannedRef] = []
        let names = Set(source.keys).union(target.keys).sorted()
        for name in names {
            let new = source[name], old = target[name]
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
                } else {
                    let why = isTag ? "the tag points elsewhere on the primary" : "the secondary has commits the primary lacks"
                    refs.append(policy.force
                        ? PlannedRef(ref: name, action: .force, old: old, new: new, reason: "\(why); overwritten (force: true), old tip kept as a backup ref")
                        : PlannedRef(ref: name, action: .diverged, old: old, new: new, reason: "\(why); kept (set force: true to overwrite it)"))
                }
            case (let old?, nil):
                let gone = mirrored.map { $0.contains(name) } ?? true
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
}

/// Ref patterns as git refspecs read them: exact names, or one `*` matching any run of characters.
public enum RefFilter {
    public static func matches(_ name: String, _ patterns: [String]) -> Bool {
        if privateRefNamespaces.contains(where: { name.hasPrefix($0) }) { return false }
        return patterns.contains { matches(name, $0) }
    }

    static func matches(_ name: String, _ pattern: String) -> Bool {
        guard let star = pattern.firstIndex(of: "*") else { return name == pattern }
        let prefix = pattern[..<star], suffix = pattern[pattern.index(after: star)...]
        return name.count >= prefix.count + suffix.count && name.hasPrefix(prefix) && name.hasSuffix(suffix)
    }
}
