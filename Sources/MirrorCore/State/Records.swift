import Foundation
import GRDB

/// One sync (or plan) of one repository.
public struct SyncRun: Codable, Sendable, FetchableRecord, StoredDates, MutablePersistableRecord {
    public static let databaseTableName = "run"
    public var id: Int64?
    public var repository: String
    public var startedAt: Date
    public var finishedAt: Date?
    public var result: RunResult
    public var trigger: String
    public var pid: Int32
    public var summary: String?

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let repository = Column(CodingKeys.repository)
        public static let result = Column(CodingKeys.result)
        public static let pid = Column(CodingKeys.pid)
        public static let finishedAt = Column(CodingKeys.finishedAt)
        public static let summary = Column(CodingKeys.summary)
    }
}

/// How a run ended, or that it has not.
public enum RunResult: String, Codable, Sendable, DatabaseValueConvertible {
    case running, ok, failed, interrupted
}

/// Where a remote stands after a run: what its state row, its alerts and its metrics say.
public enum RemoteCondition: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case ok, diverged, failing
}

// Stored as their raw values (the words `status --json` and the metrics use).
extension ErrorClass: DatabaseValueConvertible {}
extension Role: DatabaseValueConvertible {}

/// The last known state of one remote of one repository.
public struct RemoteState: Codable, Sendable, FetchableRecord, StoredDates, PersistableRecord {
    public static let databaseTableName = "remote_state"
    public var repository: String
    public var remote: String
    public var role: Role
    public var url: String
    public var state: RemoteCondition
    public var lastAttempt: Date?
    public var lastSuccess: Date?
    public var lastErrorClass: ErrorClass?
    public var lastError: String?
    public var refsFingerprint: String?
    public var lastRunId: Int64?
    /// The branch the remote's HEAD pointed at when last seen (`refs/heads/main`), if it advertised one.
    public var head: String? = nil

    public enum Columns {
        public static let repository = Column(CodingKeys.repository)
        public static let remote = Column(CodingKeys.remote)
        public static let role = Column(CodingKeys.role)
    }
}

/// A remote's state row and the journal rows of one run, written together.
public struct RemoteOutcome: Sendable {
    public var state: RemoteState
    public var refs: [RefUpdate]

    public init(state: RemoteState, refs: [RefUpdate]) {
        self.state = state
        self.refs = refs
    }
}

/// One ref of one remote in one run: what it was, what it became, and why.
public struct RefUpdate: Codable, Sendable, FetchableRecord, StoredDates, MutablePersistableRecord {
    public static let databaseTableName = "ref_update"
    public var id: Int64?
    public var runId: Int64
    public var repository: String
    public var remote: String
    public var ref: String
    public var oldOid: String?
    public var newOid: String?
    public var action: RefAction
    public var outcome: RefResult
    public var message: String?
    public var backupRef: String?
    public var recordedAt: Date

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    /// The outcome of a row written before its push, until the push's outcome replaces it.
    public static let pending = RefResult.pending

    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let runId = Column(CodingKeys.runId)
        public static let repository = Column(CodingKeys.repository)
        public static let remote = Column(CodingKeys.remote)
        public static let ref = Column(CodingKeys.ref)
        public static let action = Column(CodingKeys.action)
        public static let outcome = Column(CodingKeys.outcome)
        public static let oldOid = Column(CodingKeys.oldOid)
        public static let backupRef = Column(CodingKeys.backupRef)
    }
}

/// Who holds a repository's lock; a lease whose process is gone is taken over.
public struct Lease: Codable, Sendable, FetchableRecord, StoredDates, PersistableRecord {
    public static let databaseTableName = "lease"
    public var repository: String
    public var pid: Int32
    public var host: String
    public var acquiredAt: Date
    public var heartbeatAt: Date

    public enum Columns {
        public static let repository = Column(CodingKeys.repository)
        public static let pid = Column(CodingKeys.pid)
    }
}

/// When the daemon will next sync a repository, and what it is doing now.
public struct ScheduleEntry: Codable, Sendable, FetchableRecord, StoredDates, PersistableRecord {
    public static let databaseTableName = "schedule"
    public var repository: String
    public var nextRun: Date?
    /// idle, running, queued
    public var state: String
    /// Why the next run is when it is ("backing off after 3 failures (network)", …).
    public var note: String?
    public var pid: Int32
    public var updatedAt: Date

    public init(repository: String, nextRun: Date?, state: String, note: String?, pid: Int32 = getpid(), updatedAt: Date = Date()) {
        self.repository = repository
        self.nextRun = nextRun
        self.state = state
        self.note = note
        self.pid = pid
        self.updatedAt = updatedAt
    }
}

/// One full pass over a fleet: a `sync` of every configured repository, or the daemon's runs from
/// the end of the previous pass until every repository it schedules had finished one.
public struct PassRecord: Codable, Sendable, FetchableRecord, StoredDates, MutablePersistableRecord {
    public static let databaseTableName = "pass"
    public var id: Int64?
    /// `sync` or `daemon`.
    public var source: String
    public var startedAt: Date
    public var finishedAt: Date
    public var repositories: Int

    public var duration: TimeInterval { finishedAt.timeIntervalSince(startedAt) }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// What the primary's forge API said before the last run that left every remote in step
/// (`change_check: api`): a run whose answer is the same, less than `verify_interval` after it, lists nothing.
public struct ChangeCheckRecord: Codable, Sendable, Equatable, FetchableRecord, StoredDates, PersistableRecord {
    public static let databaseTableName = "change_check"
    public var repository: String
    public var marker: String
    /// The answer's ETag, sent back as If-None-Match (a 304 costs GitHub's rate limit nothing).
    public var etag: String?
    /// When that run asked, just before it listed every remote.
    public var listedAt: Date

    public init(repository: String, marker: String, etag: String?, listedAt: Date) {
        self.repository = repository
        self.marker = marker
        self.etag = etag
        self.listedAt = listedAt
    }
}

/// A divergence an operator accepted (`gitmirror accept`): the ref is left as it is and does not count
/// as diverged while the secondary holds `secondaryOid` and the primary `primaryOid`.
public struct AcceptedDivergence: Codable, Sendable, Equatable, FetchableRecord, StoredDates, PersistableRecord {
    public static let databaseTableName = "accepted_divergence"
    public var repository: String
    public var remote: String
    public var ref: String
    public var secondaryOid: String
    public var primaryOid: String
    public var acceptedAt: Date

    public enum Columns {
        public static let repository = Column(CodingKeys.repository)
        public static let remote = Column(CodingKeys.remote)
    }
}

/// What a running sync is doing on one remote, for `status`: written every few seconds while it
/// works, removed when that remote is done.
public struct SyncProgress: Codable, Sendable, FetchableRecord, StoredDates, PersistableRecord {
    public static let databaseTableName = "progress"
    public var repository: String
    public var remote: String
    public var phase: String
    public var pid: Int32
    public var startedAt: Date
    public var updatedAt: Date

    public enum Columns {
        public static let repository = Column(CodingKeys.repository)
        public static let remote = Column(CodingKeys.remote)
    }

    public init(repository: String, remote: String, phase: String, pid: Int32 = getpid(), startedAt: Date, updatedAt: Date = Date()) {
        self.repository = repository
        self.remote = remote
        self.phase = phase
        self.pid = pid
        self.startedAt = startedAt
        self.updatedAt = updatedAt
    }
}

/// A repository a `discover:` source listed, as it was last listed; `goneSince` is set when a later
/// listing no longer had it (it is then unscheduled, and nothing is deleted anywhere).
public struct DiscoveredRecord: Codable, Sendable, FetchableRecord, StoredDates, PersistableRecord {
    public static let databaseTableName = "discovered"
    public var source: String
    public var path: String
    /// The DiscoveredRepository, as JSON.
    public var listing: String
    public var firstSeen: Date
    public var lastSeen: Date
    public var goneSince: Date?

    public var repository: DiscoveredRepository? { try? JSONDecoder().decode(DiscoveredRepository.self, from: Data(listing.utf8)) }

    public enum Columns {
        public static let source = Column(CodingKeys.source)
        public static let path = Column(CodingKeys.path)
        public static let goneSince = Column(CodingKeys.goneSince)
    }
}

/// When a `discover:` source was last listed, and how that went.
public struct DiscoverySourceState: Codable, Sendable, FetchableRecord, StoredDates, PersistableRecord {
    public static let databaseTableName = "discovery_source"
    public var source: String
    public var lastAttempt: Date
    public var lastSuccess: Date?
    public var lastErrorClass: ErrorClass?
    public var lastError: String?
    public var count: Int
}

// The journal's vocabulary (Base/Journal.swift) is stored as its raw values.
extension RefAction: DatabaseValueConvertible {}
extension RefResult: DatabaseValueConvertible {}
