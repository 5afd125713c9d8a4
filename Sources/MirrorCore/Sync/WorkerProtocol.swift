import Git

/// A job for a worker process, sent as one JSON document on its stdin, secrets included
/// (never in argv, the environment or a file).
public struct WorkerRequest: Codable, Sendable {
    public enum Operation: String, Codable, Sendable {
        /// List the remote's refs.
        case list
        /// Connect for a push and list what the remote's receive-pack advertises; push nothing
        /// (`doctor`: may these credentials push here?).
        case pushAccess = "push_access"
        /// Fetch `refspecs` into the cache.
        case fetch
        /// Push `updates` from the cache, then list the remote again.
        case push
        /// Answer `ancestry` questions on the cache: is `old` there, and is `new` a fast-forward of it?
        /// (Reading objects can hang on a damaged cache, so the supervisor never does it itself.)
        case ancestry
        /// Point each of `backups` at its object, where the cache holds the object.
        case backup
        /// Read every object of the cache; with `announceFrom`, name each object before reading it from that index on.
        case verify
        /// List the LFS pointers in the history of `lfsTips` that is not in the history of `lfsKnown`.
        case lfsScan = "lfs_scan"

        /// Operations one worker runs several of at once: they open one connection, only read from
        /// it, and touch no file, so they are cheap to run side by side and safe to run again on
        /// another worker when the one they shared is killed for somebody else's stall.
        public var isListing: Bool { self == .list || self == .pushAccess }
    }

    public var operation: Operation
    public var url: String
    public var credential: WireCredential?
    /// The known_hosts file and the name the host goes by in it (`host` or `[host]:port`).
    public var knownHostsFile: String?
    public var knownHostsName: String?
    public var caFile: String?
    public var cachePath: String?
    public var refspecs: [String]?
    public var updates: [WireUpdate]?
    public var ancestry: [AncestryQuestion]?
    public var backups: [BackupRef]?
    public var announceFrom: Int?
    /// How a push travels (default: git's transfer, which reuses stored deltas).
    public var transfer: TransferKind?
    /// `fetch` into an empty cache: empty secondaries that receive the pack as it arrives (PackSeed.swift).
    public var seeds: [SeedTarget]?
    /// How long a seeded secondary may stay silent, and how long after the job's start all seeding ends.
    public var seedStall: Double?
    public var seedDeadline: Double?
    public var lfsTips: [ObjectID]?
    public var lfsKnown: [ObjectID]?
    /// Set on a job for a worker that runs several at once (listings): the worker starts it at
    /// once on a thread of its own and tags every event about it with this id.
    public var id: Int?

    public init(operation: Operation, url: String) {
        self.operation = operation
        self.url = url
    }
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

public struct WireCredential: Codable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case password
        case sshKey = "ssh_key"
        /// AWS keys: the worker signs a CodeCommit password when the server asks.
        case aws
    }
    public var kind: Kind
    public var username: String?
    public var password: String?
    public var privateKey: String?
    public var passphrase: String?
    public var aws: AWSCredentials?
    public var region: String?
    /// The host and path CodeCommit checks the signature against.
    public var signingHost: String?
    public var signingPath: String?
}

/// One ref to push: `expectedOld` is what the plan saw (the lease); nil `new` deletes.
public struct WireUpdate: Codable, Sendable, Equatable {
    public var ref: String
    public var expectedOld: ObjectID?
    public var new: ObjectID?
    public var force: Bool
}

/// The server's verdict on one pushed ref.
public struct PushOutcome: Codable, Sendable, Equatable {
    public var ref: String
    public var accepted: Bool
    public var message: String?
}

public struct WorkerResult: Codable, Sendable {
    public var heads: [RemoteHead] = []
    /// What the server's HEAD points at (listings only).
    public var defaultBranch: String?
    public var outcomes: [PushOutcome] = []
    public var bytes: Int = 0
    public var serverMessages: [String] = []
    public var answers: [AncestryAnswer]?
    /// Backups whose object the cache lacks (nothing was written for them).
    public var missing: [String]?
    /// `verify`: objects read, and the first damaged one with what was wrong.
    public var verified: Int?
    public var damage: String?
    /// `fetch` with `seeds`: what each seeded secondary accepted.
    public var seeded: [SeedOutcome]?
    /// `lfsScan`: the LFS objects the scanned history points to.
    public var lfsPointers: [LFSPointer]?
}

/// One line a worker writes on stdout.
public struct WorkerEvent: Codable, Sendable {
    /// The job's id, when it had one.
    public var id: Int?
    public var progress: String?
    public var result: WorkerResult?
    public var failure: SyncFailure?
}
