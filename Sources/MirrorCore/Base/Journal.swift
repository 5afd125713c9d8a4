import Foundation

// The journal's vocabulary (the `ref_update` table, `gitmirror history`, the reports): one enum each,
// shared by the sync that decides and the store that records. The raw values are what the database
// and the JSON output have always held.

/// What a sync will do to one ref of one secondary.
public enum RefAction: String, Codable, Sendable {
    case create
    case fastForward = "fast_forward"
    case upToDate = "up_to_date"
    /// The secondary has commits the primary lacks (or a tag moved): kept and reported.
    case diverged
    /// Diverged, and the policy allows overwriting it (after a backup).
    case force
    /// append_only: the primary rewrote a branch gitmirror mirrored; the secondary keeps its branch and
    /// gets the primary's new history beside it (`refs/rewritten/…`), created or fast-forwarded.
    case beside
    /// Gone from the primary, and prune is on.
    case delete
    /// Gone from the primary, left in place (prune off, or the deletion cap reached).
    case keep
    /// Outside the configured ref filters.
    case skip
    /// The journal's own, for the cache rather than a remote: a damaged cache moved aside and rebuilt,
    /// and a backup ref carried over from it (RefResult `rebuilt`, `lost`).
    case quarantine
    case carryOver = "carry_over"

    /// Whether carrying the action out sends anything to the secondary.
    public var pushes: Bool { self == .create || self == .fastForward || self == .force || self == .delete || self == .beside }
}

/// What became of one ref: the sync's verdict, and the journal's.
public enum RefResult: String, Codable, Sendable, CaseIterable {
    /// The remote holds what the plan gave it (verified by the final listing).
    case applied
    /// The server refused it, or the sync would not send it (a host's refusal, a name taken by a folder).
    case rejected
    /// Left as it is on purpose (diverged, kept, past the deletion cap).
    case kept
    /// Meant to change and did not (a backup that failed, a server that said ok but holds something else).
    case failed
    /// Planned (`plan`, or a push not made yet).
    case planned
    /// Journaled before its push, until the push's outcome replaces it (or a later run settles it).
    case pending
    /// Settled by a later run that could not tell whether the push happened.
    case unknown
    /// The cache, rebuilt from the primary after it was found damaged.
    case rebuilt
    /// A backup ref whose objects could not be read from the damaged cache.
    case lost
}
