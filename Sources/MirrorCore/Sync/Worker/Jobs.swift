import Foundation
import Git

// The jobs a worker runs (Workers/Job.swift): each with exactly its inputs and its result. The
// worker side of each is in Worker.swift; the supervisor sends them through `Workers.run`.

/// A job that reaches a remote: its endpoint is the remote's.
public protocol RemoteJob: Job {
    var remote: Endpoint { get }
}

extension RemoteJob {
    public var endpoint: Endpoint? { remote }
}

/// A job on the cache alone: it connects nowhere, and silence is a read that never ends.
public protocol CacheJob: Job {
    var cache: String { get }
}

extension CacheJob {
    public static var kind: JobKind { .cache }
    public var endpoint: Endpoint? { nil }
}

/// A remote's refs and the branch its HEAD points at.
public struct Listing: Codable, Sendable {
    public var heads: [RemoteHead]
    public var defaultBranch: String?

    public init(heads: [RemoteHead], defaultBranch: String? = nil) {
        self.heads = heads
        self.defaultBranch = defaultBranch
    }

    private enum CodingKeys: String, CodingKey { case heads, refs, defaultBranch }

    /// The heads travel as one string (CompactRefs); a name with a space in it (a hostile server's)
    /// sends them all as objects instead.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(defaultBranch, forKey: .defaultBranch)
        if let text = CompactRefs.text(heads.lazy.map { ($0.name, $0.id) }) {
            try container.encode(text, forKey: .refs)
        } else {
            try container.encode(heads, forKey: .heads)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        defaultBranch = try container.decodeIfPresent(String.self, forKey: .defaultBranch)
        guard let text = try container.decodeIfPresent(String.self, forKey: .refs) else {
            heads = try container.decode([RemoteHead].self, forKey: .heads)
            return
        }
        var heads: [RemoteHead] = []
        try CompactRefs.read(text, forKey: .refs, in: container) { heads.append(RemoteHead(name: $0, id: $1)) }
        self.heads = heads
    }
}

/// Refs on the worker pipe as one string, `<id><name>` after `<id><name>` with a space between (git
/// forbids spaces in a ref's name; a string without escapes decodes at memory speed): decoding 20,000
/// JSON objects took a no-op pass of a 20,000-ref repository a quarter of its time.
enum CompactRefs {
    /// Nil when a name is empty or holds a space: those refs travel as JSON objects.
    static func text(_ refs: some Sequence<(String, ObjectID)>) -> String? {
        var text = ""
        for (name, id) in refs {
            guard !name.isEmpty, !name.utf8.contains(32) else { return nil }
            if !text.isEmpty { text += " " }
            text += id.hex
            text += name
        }
        return text
    }

    static func read<Key: CodingKey>(_ text: String, forKey key: Key, in container: KeyedDecodingContainer<Key>,
                                     _ each: (String, ObjectID) -> Void) throws {
        for entry in text.utf8.split(separator: 32) {
            guard entry.count > 40, let id = ObjectID(hex: String(decoding: entry.prefix(40), as: UTF8.self)) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "not an `<id><name>` entry")
            }
            each(String(decoding: entry.dropFirst(40), as: UTF8.self), id)
        }
    }
}

/// List the remote's refs.
public struct ListJob: RemoteJob {
    public static let name = "list"
    public static let kind = JobKind.listing
    public var remote: Endpoint
    public typealias Result = Listing
}

/// Connect for a push and list what the remote's receive-pack advertises; push nothing
/// (`doctor`: may these credentials push here?).
public struct PushAccessJob: RemoteJob {
    public static let name = "push_access"
    public static let kind = JobKind.listing
    public var remote: Endpoint
    public typealias Result = Listing
}

/// Fetch `refspecs` from the remote into the cache; into an empty cache, the pack may also stream to
/// empty secondaries as it arrives (`seeding`, PackSeed.swift).
public struct FetchJob: RemoteJob {
    public static let name = "fetch"
    public static let kind = JobKind.transfer
    public var remote: Endpoint
    public var cache: String
    public var refspecs: [String]
    public var seeding: Seeding?
    /// The cache's tips offered to the server as what it has (the old values of the refs fetched and
    /// the default branch's): nil offers every ref of the cache, as libgit2 does (FetchScratch).
    public var haves: [ObjectID]?
    /// Ancestry to answer once the objects are in (AncestryJob's questions): the old and new tips of the
    /// branches that moved.
    public var questions: [AncestryQuestion]?
    /// The worker lists the primary on the fetch's own connection and decides the refspecs, haves and
    /// questions itself (FetchDecision), as the supervisor would from that listing; `refspecs` is empty.
    public var deciding: Deciding?

    /// What the worker decides the fetch from: the ref patterns the secondaries want, the cache's refs.
    public struct Deciding: Codable, Sendable {
        public var patterns: [String]
        public var cached: Listing
    }

    /// The empty secondaries a first fetch streams its pack to; how long one may stay silent, and how
    /// long after the job's start all seeding ends.
    public struct Seeding: Codable, Sendable {
        public var targets: [SeedTarget]
        public var stall: Double
        public var deadline: Double
    }

    public struct Result: Codable, Sendable {
        public var bytes: Int
        /// What each seeded secondary accepted.
        public var seeded: [SeedOutcome]
        /// The answers to `questions` (or to the decided ones), in their order.
        public var answers: [AncestryAnswer]?
        /// With `deciding`: the primary's refs as this connection advertised them.
        public var listing: Listing?
    }

    /// Each seeded secondary is a connection of its own: one that gets no room on its host now is
    /// left out of the seeding (and pushed to afterwards, as usual). A local path needs no room.
    public mutating func admitConnections(_ admit: (String) -> Bool) {
        guard var seeding else { return }
        seeding.targets = seeding.targets.filter { $0.transport == .file || admit($0.host ?? "local") }
        self.seeding = seeding.targets.isEmpty ? nil : seeding
    }
}

/// Push `updates` from the cache with their leases, then list the remote again.
public struct PushJob: RemoteJob {
    public static let name = "push"
    public static let kind = JobKind.transfer
    public var remote: Endpoint
    public var cache: String
    public var updates: [WireUpdate]
    /// How the pack travels (git's transfer, which reuses stored deltas, unless asked otherwise).
    public var transfer: TransferKind

    public struct Result: Codable, Sendable {
        public var outcomes: [PushOutcome]
        public var bytes: Int
        public var serverMessages: [String]
        /// The remote's refs after the push.
        public var heads: [RemoteHead]
    }
}

/// Answer ancestry questions on the cache: is `old` there, and is `new` a fast-forward of it? (Reading
/// objects can hang on a damaged cache, so the supervisor never does it itself.)
public struct AncestryJob: CacheJob {
    public static let name = "ancestry"
    public var cache: String
    public var questions: [AncestryQuestion]
    public typealias Result = [AncestryAnswer]
}

/// Point each backup ref at its object, where the cache holds the object; the result is the backups
/// whose object the cache lacks (nothing was written for them).
public struct BackupJob: CacheJob {
    public static let name = "backup"
    public var cache: String
    public var backups: [BackupRef]
    public typealias Result = [String]
}

/// Read every object of the cache; from `announceFrom` on, name each object before reading it.
public struct VerifyJob: CacheJob {
    public static let name = "verify"
    public var cache: String
    public var announceFrom: Int

    public struct Result: Codable, Sendable {
        /// Objects read, and the first damaged one with what was wrong.
        public var verified: Int
        public var damage: String?
    }
}

/// The LFS pointers in the history of `tips` that is not in the history of `known`.
public struct LFSScanJob: CacheJob {
    public static let name = "lfs_scan"
    public var cache: String
    public var tips: [ObjectID]
    public var known: [ObjectID]
    public typealias Result = [LFSPointer]
}

/// Is `old` in the cache, and does `new` contain it (a fast-forward)?
public struct AncestryQuestion: Codable, Sendable, Hashable {
    public var old: ObjectID
    public var new: ObjectID
}

public struct AncestryAnswer: Codable, Sendable, Equatable {
    public var present: Bool
    public var fastForward: Bool
}

/// A backup ref to write in the cache.
public struct BackupRef: Codable, Sendable, Equatable {
    public var ref: String
    public var id: ObjectID
    public var message: String
}

/// One ref to push: `expectedOld` is what the plan saw (the lease); nil `new` deletes.
public struct WireUpdate: Codable, Sendable, Equatable {
    public var ref: String
    public var expectedOld: ObjectID?
    public var new: ObjectID?
    public var force: Bool
    /// The cache's ref to push from, where it is not `ref` itself (a `beside` ref).
    public var source: String? = nil
}

/// The server's verdict on one pushed ref.
public struct PushOutcome: Codable, Sendable, Equatable {
    /// Why a ref was not pushed, where gitmirror itself knows.
    public enum Reason: String, Codable, Sendable {
        /// The ref moved on the server after it was planned (its lease no longer held): left alone.
        case moved
    }

    public var ref: String
    public var accepted: Bool
    public var message: String?
    public var reason: Reason?

    public init(ref: String, accepted: Bool, message: String? = nil, reason: Reason? = nil) {
        self.ref = ref
        self.accepted = accepted
        self.message = message
        self.reason = reason
    }

    /// A ref left alone because it moved on the server since it was planned.
    static func moved(_ ref: String, now: String? = nil) -> PushOutcome {
        PushOutcome(ref: ref, accepted: false,
                    message: "moved on the server since it was planned\(now.map { " (\($0))" } ?? ""); left alone, the next sync re-plans it",
                    reason: .moved)
    }
}

/// `doctor`, for an SSH remote: log in as a push would, asking for nothing, and ask a forced command
/// (gitolite) what the user may do — without a git command, which makes gitolite create a wild repository.
public struct SSHAccessJob: RemoteJob {
    public static let name = "ssh_access"
    public static let kind = JobKind.listing
    public var remote: Endpoint
    public typealias Result = SSHAccess
}

/// What an SSH login said: whether the key's login is a forced command, and gitolite's word where it is gitolite.
public struct SSHAccess: Codable, Sendable {
    public var forcedCommand: Bool
    public var gitolite: GitoliteAccess?
}

/// What gitolite's `info` says of one repository for the key's user.
public struct GitoliteAccess: Codable, Sendable, Equatable {
    public var repository: String
    /// Listed: it exists and the user may at least read it.
    public var exists: Bool
    public var read: Bool
    public var write: Bool
    /// The wild pattern (`C`) under which the user may create it, when it is not there.
    public var createPattern: String?

    public init(repository: String, exists: Bool, read: Bool, write: Bool, createPattern: String? = nil) {
        (self.repository, self.exists, self.read, self.write, self.createPattern) = (repository, exists, read, write, createPattern)
    }
}

/// Keep the cache a few packs deep, as git's auto-gc keeps a clone: past `packLimit` packs (or about
/// `looseLimit` loose objects), git's own `gc` repacks what the refs reach — backups under
/// `refs/gitmirror/` included — into one pack and packs the refs; unreachable objects stay two weeks.
public struct MaintainJob: CacheJob {
    public static let name = "maintain"
    public var cache: String
    public var packLimit: Int
    public var looseLimit: Int

    public struct Result: Codable, Sendable {
        /// Whether gc ran, and the packs before and after.
        public var ran: Bool
        public var packsBefore: Int
        public var packsAfter: Int
    }
}
