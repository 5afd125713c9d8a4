import Foundation
import GRDB

/// The only door to gitmirror.sqlite. Opening it runs the migrations.
public final class StateStore: Sendable {
    private let pool: DatabasePool
    /// Set when the database was written by a newer gitmirror: it is read, never written.
    public let newerSchema: StateError?

    /// state_dir cannot be written: which folder, whose it is, who we are, and where else to point it.
    static func unwritable(_ folder: String, errno code: Int32) -> SyncFailure {
        if code == ENOSPC || code == EDQUOT {
            return SyncFailure(.internal, "no space left on the device holding state_dir \(folder)")
        }
        return SyncFailure(.config, "state_dir \(folder) is not writable: \(CacheAccess.describe(folder)). Set state_dir in mirrors.yaml, or GITMIRROR_STATE_DIR, to a folder this user can write (the container image uses /var/lib/gitmirror)")
    }

    public init(path: String, readOnly: Bool = false) throws {

        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.readonly = readOnly
        // In WAL mode, NORMAL never corrupts the database; a power cut may lose the last few commits
        // (runs and states the next sync records again; backup refs themselves live in git). FULL
        // made every one of a pass's ~10 commits per repository wait for the disk, serialized: on a
        // far-away fleet those waits, not the network, set the pace.
        if !readOnly { configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") } }
        let folder = (path as NSString).deletingLastPathComponent
        if !readOnly {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                // Foundation's codes: 640 is "out of space"; the rest that can happen here are permissions.
                throw Self.unwritable(folder, errno: (error as NSError).code == CocoaError.fileWriteOutOfSpace.rawValue ? ENOSPC : EACCES)
            }
            // Every entry point that writes state comes here first: state_dir is private whoever made it,
            // and the database and its -wal and -shm (SQLite gives them the database's mode) are 0600.
            try OwnedPath.stateDirectory(folder)
            for file in [path, path + "-wal", path + "-shm", path + ".open-lock"] {
                try OwnedPath.check(file, directory: false)
                OwnedPath.makePrivate(file: file)
            }
        } else {
            for file in [path, path + "-wal", path + "-shm"] { try OwnedPath.check(file, directory: false) }
        }
        // Two processes opening a new database at once race on switching it to WAL
        // (SQLITE_BUSY without a busy handler): opening and migrating take turns.
        let opening = open(path + ".open-lock", readOnly ? O_RDONLY | O_CLOEXEC | O_NOFOLLOW : O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if opening < 0 && !readOnly && [EACCES, EPERM, EROFS].contains(errno) { throw Self.unwritable(folder, errno: errno) }
        if opening >= 0 { flock(opening, LOCK_EX) }
        defer {
            if opening >= 0 {
                flock(opening, LOCK_UN)
                close(opening)
            }
        }
        // An empty file is not a database that lost its tables: something replaced it, and
        // initialising it afresh would hide that the history is gone. (Checked under the opening
        // lock: a database another process is creating is empty only until it lets go.)
        // A new database is made here, 0600, so that SQLite's -wal and -shm are 0600 too (it copies the mode).
        var createdNow = false
        if !readOnly && access(path, F_OK) != 0 {
            if let created = try? OwnedPath.open(path, flags: O_RDWR | O_CREAT | O_EXCL) {
                close(created)
                createdNow = true
            }
        }
        if !createdNow, let attributes = try? FileManager.default.attributesOfItem(atPath: path),
           (attributes[.size] as? NSNumber)?.intValue == 0 {
            throw StateError.emptyFile(path)
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        // Migrations this binary does not know were applied by a newer gitmirror: migrating or
        // writing would corrupt what it keeps, so this one only reads.
        let known = Set(Self.migrator.migrations)
        let applied = (try? pool.read { db in try Self.migrator.appliedIdentifiers(db) }) ?? []
        let unknown = applied.subtracting(known)
        if !unknown.isEmpty {
            newerSchema = StateError.newerSchema(path: path, unknown: unknown.sorted(), known: Self.migrator.migrations.last ?? "")
        } else {
            newerSchema = nil
            if !readOnly {
                try Self.migrator.migrate(pool)
                chmod(path, 0o600)
            }
        }
    }

    /// Every write goes through here, so that a database of a newer schema is never written.
    private func write<T>(_ updates: (Database) throws -> T) throws -> T {
        if let newerSchema { throw newerSchema }
        return try pool.write(updates)
    }

    private func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        if let newerSchema { throw newerSchema }
        return try await pool.write(updates)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "run") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("repository", .text).notNull().indexed()
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
                t.column("result", .text).notNull()
                t.column("trigger", .text).notNull()
                t.column("pid", .integer).notNull()
                t.column("summary", .text)
            }
            try db.create(table: "remote_state") { t in
                t.column("repository", .text).notNull()
                t.column("remote", .text).notNull()
                t.column("role", .text).notNull()
                t.column("url", .text).notNull()
                t.column("state", .text).notNull()
                t.column("lastAttempt", .datetime)
                t.column("lastSuccess", .datetime)
                t.column("lastErrorClass", .text)
                t.column("lastError", .text)
                t.column("refsFingerprint", .text)
                t.column("lastRunId", .integer)
                t.primaryKey(["repository", "remote"])
            }
            try db.create(table: "ref_update") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("runId", .integer).notNull().references("run", onDelete: .cascade)
                t.column("repository", .text).notNull()
                t.column("remote", .text).notNull()
                t.column("ref", .text).notNull()
                t.column("oldOid", .text)
                t.column("newOid", .text)
                t.column("action", .text).notNull()
                t.column("outcome", .text).notNull()
                t.column("message", .text)
                t.column("backupRef", .text)
                t.column("recordedAt", .datetime).notNull()
            }
            try db.create(index: "ref_update_by_ref", on: "ref_update", columns: ["repository", "remote", "ref"])
            try db.create(table: "lease") { t in
                t.primaryKey("repository", .text)
                t.column("pid", .integer).notNull()
                t.column("host", .text).notNull()
                t.column("acquiredAt", .datetime).notNull()
                t.column("heartbeatAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v2") { db in
            // The daemon's live schedule, for `status`.
            try db.create(table: "schedule") { t in
                t.primaryKey("repository", .text)
                t.column("nextRun", .datetime)
                t.column("state", .text).notNull()
                t.column("note", .text)
                t.column("pid", .integer).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v3") { db in
            // Retention deletes runs by age and keeps those the journal's backups or a remote's state point to.
            try db.create(index: "run_by_finish", on: "run", columns: ["finishedAt"])
            try db.create(index: "ref_update_by_run", on: "ref_update", columns: ["runId"])
        }
        migrator.registerMigration("v4") { db in
            // How far a running sync is, per remote, for `status`.
            try db.create(table: "progress") { t in
                t.column("repository", .text).notNull()
                t.column("remote", .text).notNull()
                t.column("phase", .text).notNull()
                t.column("pid", .integer).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
                t.primaryKey(["repository", "remote"])
            }
        }
        migrator.registerMigration("v5") { db in
            // What discover: sources listed, and the HEAD each remote showed (default branches).
            try db.create(table: "discovered") { t in
                t.column("source", .text).notNull()
                t.column("path", .text).notNull()
                t.column("listing", .text).notNull()
                t.column("firstSeen", .datetime).notNull()
                t.column("lastSeen", .datetime).notNull()
                t.column("goneSince", .datetime)
                t.primaryKey(["source", "path"])
            }
            try db.create(table: "discovery_source") { t in
                t.primaryKey("source", .text)
                t.column("lastAttempt", .datetime).notNull()
                t.column("lastSuccess", .datetime)
                t.column("lastErrorClass", .text)
                t.column("lastError", .text)
                t.column("count", .integer).notNull()
            }
            try db.alter(table: "remote_state") { t in t.add(column: "head", .text) }
        }
        migrator.registerMigration("v6") { db in
            // How long full passes over the fleet took (the last hundred), for `status` and freshness.
            try db.create(table: "pass") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("source", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime).notNull()
                t.column("repositories", .integer).notNull()
            }
        }
        migrator.registerMigration("v7") { db in
            // change_check: api — the forge's last answer for repositories left in step.
            try db.create(table: "change_check") { t in
                t.primaryKey("repository", .text)
                t.column("marker", .text).notNull()
                t.column("etag", .text)
                t.column("listedAt", .datetime).notNull()
            }
        }
        return migrator
    }

    // MARK: discovery

    /// What changed in a source's listing.
    public struct ListingChange: Sendable, Equatable {
        public var appeared: [String] = []
        public var disappeared: [String] = []
        public var returned: [String] = []
    }

    /// Records a successful listing of a source: every repository in it is present, every one that was
    /// present and is not in it is gone from now on (its row stays, as do its cache and history).
    @discardableResult
    public func recordListing(source: String, repositories: [DiscoveredRepository], at now: Date = Date()) throws -> ListingChange {
        try write { db in
            var change = ListingChange()
            let known = try DiscoveredRecord.filter(DiscoveredRecord.Columns.source == source).fetchAll(db)
            let byPath = Dictionary(known.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            var listed: Set<String> = []
            for repository in repositories {
                listed.insert(repository.path)
                let json = String(decoding: (try? encoder.encode(repository)) ?? Data(), as: UTF8.self)
                if var row = byPath[repository.path] {
                    if row.goneSince != nil { change.returned.append(repository.path) }
                    row.listing = json
                    row.lastSeen = now
                    row.goneSince = nil
                    try row.save(db)
                } else {
                    change.appeared.append(repository.path)
                    try DiscoveredRecord(source: source, path: repository.path, listing: json, firstSeen: now, lastSeen: now, goneSince: nil).insert(db)
                }
            }
            for var row in known where !listed.contains(row.path) && row.goneSince == nil {
                row.goneSince = now
                try row.save(db)
                change.disappeared.append(row.path)
            }
            try DiscoverySourceState(source: source, lastAttempt: now, lastSuccess: now, lastErrorClass: nil, lastError: nil, count: repositories.count).save(db)
            return change
        }
    }

    /// Records a listing that failed: the last good one stays in force.
    public func recordListingFailure(source: String, failure: SyncFailure, at now: Date = Date()) throws {
        try write { db in
            var row = try DiscoverySourceState.fetchOne(db, key: source)
                ?? DiscoverySourceState(source: source, lastAttempt: now, lastSuccess: nil, lastErrorClass: nil, lastError: nil, count: 0)
            row.lastAttempt = now
            row.lastErrorClass = failure.errorClass
            row.lastError = failure.message
            try row.save(db)
        }
    }

    /// Every repository any source listed, present or gone.
    public func discovered() throws -> [DiscoveredRecord] {
        try pool.read { db in try DiscoveredRecord.order(DiscoveredRecord.Columns.source, DiscoveredRecord.Columns.path).fetchAll(db) }
    }

    /// The present repositories of each source, as last listed.
    public func listings() throws -> [String: [DiscoveredRepository]] {
        var result: [String: [DiscoveredRepository]] = [:]
        for row in try discovered() where row.goneSince == nil {
            if let repository = row.repository { result[row.source, default: []].append(repository) }
        }
        return result
    }

    public func discoverySources() throws -> [DiscoverySourceState] {
        try pool.read { db in try DiscoverySourceState.fetchAll(db) }
    }

    // MARK: retention

    public struct Pruned: Sendable, Equatable {
        public var runs = 0
        public var refUpdates = 0

        public init(runs: Int = 0, refUpdates: Int = 0) {
            self.runs = runs
            self.refUpdates = refUpdates
        }
    }

    /// Forgets finished runs past the retention: those that moved no ref after
    /// `retention.runs`, those that did (with their journal rows) after
    /// `retention.journal`. Never deleted: running runs, the run each remote's
    /// state names, and runs whose journal names a backup ref (the record of a
    /// forced overwrite or a deletion). Works in small transactions, so that a
    /// sync or `status` running meanwhile never waits long.
    @discardableResult
    public func prune(_ retention: Retention, now: Date = Date(), batch: Int = 2000) throws -> Pruned {
        let quietBefore = now.addingTimeInterval(-retention.runs)
        let journalBefore = retention.journal.map { now.addingTimeInterval(-$0) } ?? Date.distantPast
        var total = Pruned()
        while true {
            let step = try write { db in try Self.pruneBatch(db, quietBefore: quietBefore, journalBefore: journalBefore, batch: batch) }
            total.runs += step.runs
            total.refUpdates += step.refUpdates
            if step.runs < batch { return total }
        }
    }

    /// The same, for the daemon: each batch waits for GRDB's writer without holding a thread of the cooperative pool.
    @discardableResult
    public func prune(_ retention: Retention, now: Date = Date(), batch: Int = 2000) async throws -> Pruned {
        let quietBefore = now.addingTimeInterval(-retention.runs)
        let journalBefore = retention.journal.map { now.addingTimeInterval(-$0) } ?? Date.distantPast
        var total = Pruned()
        while true {
            let step = try await write { db in try Self.pruneBatch(db, quietBefore: quietBefore, journalBefore: journalBefore, batch: batch) }
            total.runs += step.runs
            total.refUpdates += step.refUpdates
            if step.runs < batch { return total }
        }
    }

    private static func pruneBatch(_ db: Database, quietBefore: Date, journalBefore: Date, batch: Int) throws -> Pruned {
        let ids = try Int64.fetchAll(db, sql: """
            SELECT id FROM run
            WHERE result != :running AND finishedAt IS NOT NULL AND finishedAt < :quietBefore
              AND id NOT IN (SELECT lastRunId FROM remote_state WHERE lastRunId IS NOT NULL)
              AND NOT EXISTS (SELECT 1 FROM ref_update u WHERE u.runId = run.id AND u.backupRef IS NOT NULL)
              AND (finishedAt < :journalBefore OR NOT EXISTS (SELECT 1 FROM ref_update u WHERE u.runId = run.id))
            ORDER BY id LIMIT :batch
            """, arguments: ["quietBefore": quietBefore, "journalBefore": journalBefore, "batch": batch, "running": RunResult.running])
        guard !ids.isEmpty else { return Pruned() }
        let refUpdates = try RefUpdate.filter(ids.contains(RefUpdate.Columns.runId)).deleteAll(db)
        let runs = try SyncRun.filter(ids.contains(SyncRun.Columns.id)).deleteAll(db)
        return Pruned(runs: runs, refUpdates: refUpdates)
    }

    // MARK: the daemon's schedule

    public func recordSchedule(_ entry: ScheduleEntry) throws {
        try write { db in try entry.save(db) }
    }

    /// The daemon's scheduler publishes through this one: it never blocks a thread while SQLite is busy.
    public func recordSchedule(_ entry: ScheduleEntry) async throws {
        try await write { db in try entry.save(db) }
    }

    public func forgetSchedule(repository: String) throws {
        try write { db in _ = try ScheduleEntry.deleteOne(db, key: repository) }
    }

    public func schedule() throws -> [ScheduleEntry] {
        try pool.read { db in try ScheduleEntry.fetchAll(db) }
    }

    // MARK: full passes

    /// Records a finished pass and forgets all but the last hundred.
    public func recordPass(_ pass: PassRecord) throws {
        try write { db in
            var row = pass
            try row.insert(db)
            try db.execute(sql: "DELETE FROM pass WHERE id <= ?", arguments: [(row.id ?? 0) - 100])
        }
    }

    public func lastPass() throws -> PassRecord? {
        try pool.read { db in try PassRecord.order(Column("id").desc).fetchOne(db) }
    }

    // MARK: change checks (change_check: api)

    public func changeCheck(repository: String) throws -> ChangeCheckRecord? {
        try pool.read { db in try ChangeCheckRecord.fetchOne(db, key: repository) }
    }

    public func saveChangeCheck(_ record: ChangeCheckRecord) throws {
        try write { db in try record.save(db) }
    }

    public func clearChangeCheck(repository: String) throws {
        try write { db in _ = try ChangeCheckRecord.deleteOne(db, key: repository) }
    }

    // MARK: progress of running syncs

    public func recordProgress(_ progress: SyncProgress) throws {
        try write { db in try progress.save(db) }
    }

    public func clearProgress(repository: String, remote: String? = nil) throws {
        try write { db in
            var request = SyncProgress.filter(SyncProgress.Columns.repository == repository)
            if let remote { request = request.filter(SyncProgress.Columns.remote == remote) }
            _ = try request.deleteAll(db)
        }
    }

    public func progress() throws -> [SyncProgress] {
        try pool.read { db in try SyncProgress.fetchAll(db) }
    }

    // MARK: runs

    public func recordRunStarted(repository: String, trigger: String) throws -> Int64 {
        try write { db in
            var run = SyncRun(id: nil, repository: repository, startedAt: Date(), finishedAt: nil, result: .running,
                              trigger: trigger, pid: getpid(), summary: nil)
            try run.insert(db)
            return run.id!
        }
    }

    public func recordRunFinished(id: Int64, result: RunResult, summary: String?) throws {
        try write { db in
            _ = try SyncRun.filter(key: id).updateAll(db, SyncRun.Columns.finishedAt.set(to: Date()), SyncRun.Columns.result.set(to: result),
                                                       SyncRun.Columns.summary.set(to: summary))
        }
    }

    /// One remote's outcome in one run: its state row and every ref row, in one transaction.
    public func recordRemoteOutcome(_ state: RemoteState, refs: [RefUpdate]) throws {
        try recordRemoteOutcomes([RemoteOutcome(state: state, refs: refs)])
    }

    /// Several remotes' outcomes in one transaction.
    public func recordRemoteOutcomes(_ outcomes: [RemoteOutcome]) throws {
        guard !outcomes.isEmpty else { return }
        try write { db in
            for outcome in outcomes { try Self.record(db, outcome) }
        }
    }

    /// Each remote of every repository, every pass: one statement, compiled once per connection,
    /// that keeps what this outcome does not know (the last success of a remote that failed now,
    /// the fingerprint and HEAD of one not listed) rather than a read, a decode and a write.
    private static let upsertRemoteState = """
        INSERT INTO remote_state (repository, remote, role, url, state, lastAttempt, lastSuccess, lastErrorClass, lastError, refsFingerprint, lastRunId, head)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (repository, remote) DO UPDATE SET
            role = excluded.role, url = excluded.url, state = excluded.state, lastAttempt = excluded.lastAttempt,
            lastSuccess = COALESCE(excluded.lastSuccess, remote_state.lastSuccess),
            lastErrorClass = excluded.lastErrorClass, lastError = excluded.lastError,
            refsFingerprint = COALESCE(excluded.refsFingerprint, remote_state.refsFingerprint),
            lastRunId = excluded.lastRunId, head = COALESCE(excluded.head, remote_state.head)
        """

    private static func record(_ db: Database, _ outcome: RemoteOutcome) throws {
        let state = outcome.state
        if let runId = state.lastRunId { try dropPending(db, runId: runId, repository: state.repository, remote: state.remote) }
        try db.cachedStatement(sql: upsertRemoteState).execute(arguments: [
            state.repository, state.remote, state.role.rawValue, state.url, state.state.rawValue, state.lastAttempt, state.lastSuccess,
            state.lastErrorClass?.rawValue, state.lastError, state.refsFingerprint, state.lastRunId, state.head,
        ])
        for var ref in outcome.refs {
            // A ref left alone again (kept, diverged) is news only when something about it changed:
            // a daemon syncing every few minutes for a year must not bury the journal in repeats.
            if ref.outcome == "kept", let last = try RefUpdate
                .filter(RefUpdate.Columns.repository == ref.repository && RefUpdate.Columns.remote == ref.remote && RefUpdate.Columns.ref == ref.ref)
                .order(RefUpdate.Columns.id.desc).fetchOne(db),
                last.outcome == ref.outcome, last.action == ref.action, last.oldOid == ref.oldOid, last.newOid == ref.newOid {
                continue
            }
            try ref.insert(db)
        }
    }

    /// Journal rows that belong to no remote's outcome (the cache's repairs, the refs a stopped run applied);
    /// `replacingPending`: that run's pending rows for that remote give way to them.
    public func recordJournal(_ refs: [RefUpdate], replacingPending: (runId: Int64, remote: String)? = nil) throws {
        try write { db in
            if let replacingPending, let repository = refs.first?.repository {
                try Self.dropPending(db, runId: replacingPending.runId, repository: repository, remote: replacingPending.remote)
            }
            for var ref in refs { try ref.insert(db) }
        }
    }

    /// Writes, before a push that overwrites or deletes refs, one `pending` row per such ref with its
    /// backup: a run that dies during the push still shows what it was doing and where the old tip is.
    /// The remote's outcome replaces them; a later run settles any left (`settlePending`).
    public func recordPending(_ refs: [RefUpdate]) throws {
        try write { db in
            for var ref in refs {
                ref.outcome = RefUpdate.pending
                try ref.insert(db)
            }
        }
    }

    private static func dropPending(_ db: Database, runId: Int64, repository: String, remote: String) throws {
        try db.cachedStatement(sql: "DELETE FROM ref_update WHERE runId = ? AND repository = ? AND remote = ? AND outcome = ?")
            .execute(arguments: [runId, repository, remote, RefUpdate.pending])
    }

    /// Settles the pending rows an earlier run of this remote left (it died during its push) from what
    /// the remote holds now: `applied` when it holds the new tip (or no ref, for a delete), `failed` when
    /// it still holds the old one, `unknown` otherwise. Returns how many were settled.
    @discardableResult
    public func settlePending(repository: String, remote: String, holding current: [String: String], before runId: Int64?) throws -> Int {
        try write { db in
            var request = RefUpdate.filter(RefUpdate.Columns.repository == repository && RefUpdate.Columns.remote == remote
                                           && RefUpdate.Columns.outcome == RefUpdate.pending)
            if let runId { request = request.filter(RefUpdate.Columns.runId != runId) }
            let rows = try request.fetchAll(db)
            for var row in rows {
                let now = current[row.ref]
                let holds = now.map { "holds \($0.prefix(10))" } ?? "has no such ref"
                if now == row.newOid {
                    row.outcome = "applied"
                } else if now == row.oldOid {
                    row.outcome = "failed"
                } else {
                    row.outcome = "unknown"
                }
                row.message = [row.message, "settled by a later run: the run stopped during its push; the secondary \(holds)"]
                    .compactMap { $0 }.joined(separator: "; ")
                try row.update(db)
            }
            return rows.count
        }
    }

    public func remoteStates() throws -> [RemoteState] {
        try pool.read { db in try RemoteState.order(RemoteState.Columns.repository, RemoteState.Columns.role, RemoteState.Columns.remote).fetchAll(db) }
    }

    public func runs(repository: String? = nil, limit: Int = 50) throws -> [SyncRun] {
        try pool.read { db in
            var request = SyncRun.order(SyncRun.Columns.id.desc).limit(limit)
            if let repository { request = request.filter(SyncRun.Columns.repository == repository) }
            return try request.fetchAll(db)
        }
    }

    /// When the oldest run of a repository that the database still holds started.
    public func firstRunStart(repository: String) throws -> Date? {
        try pool.read { db in
            try Date.fetchOne(db, sql: "SELECT MIN(startedAt) FROM run WHERE repository = ?", arguments: [repository])
        }
    }

    public func refHistory(repository: String, remote: String? = nil, ref: String? = nil, limit: Int = 200) throws -> [RefUpdate] {
        try pool.read { db in
            var request = RefUpdate.filter(RefUpdate.Columns.repository == repository)
            if let remote { request = request.filter(RefUpdate.Columns.remote == remote) }
            if let ref { request = request.filter(RefUpdate.Columns.ref == ref) }
            return try request.order(RefUpdate.Columns.id.desc).limit(limit).fetchAll(db)
        }
    }

    // MARK: leases

    /// Records that this process holds the repository; returns the lease it replaced, if any
    /// (left by a process that died while holding it).
    @discardableResult
    private static func takeLease(_ db: Database, repository: String) throws -> Lease? {
        let previous = try Lease.fetchOne(db.cachedStatement(sql: "SELECT * FROM lease WHERE repository = ?"), arguments: [repository])
        if let previous {
            // Its holder died mid-run: say so in the journal rather than leave it "running".
            try markInterrupted(db, SyncRun.Columns.repository == repository && SyncRun.Columns.pid == previous.pid)
        }
        let now = Date()
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO lease (repository, pid, host, acquiredAt, heartbeatAt) VALUES (?, ?, ?, ?, ?)")
            .execute(arguments: [repository, getpid(), hostName, now, now])
        return previous
    }

    /// This host's name, looked up once.
    private static let hostName = ProcessInfo.processInfo.hostName

    /// A repository's run begins: its lease taken (returning the one a dead holder left) and the run
    /// recorded, in one transaction (a no-op pass is a few transactions per repository, and each counts).
    public func beginRun(repository: String, trigger: String) throws -> (previousLease: Lease?, runId: Int64) {
        try write { db in
            let previous = try Self.takeLease(db, repository: repository)
            try db.cachedStatement(sql: "INSERT INTO run (repository, startedAt, finishedAt, result, trigger, pid, summary) VALUES (?, ?, NULL, ?, ?, ?, NULL)")
                .execute(arguments: [repository, Date(), RunResult.running.rawValue, trigger, getpid()])
            return (previous, db.lastInsertedRowID)
        }
    }

    /// A repository's run is over: what it showed as in progress goes, and so does its lease.
    public func endRun(repository: String) throws {
        try write { db in try Self.end(db, repository: repository) }
    }

    private static func end(_ db: Database, repository: String) throws {
        try db.cachedStatement(sql: "DELETE FROM progress WHERE repository = ?").execute(arguments: [repository])
        try db.cachedStatement(sql: "DELETE FROM lease WHERE repository = ? AND pid = ?").execute(arguments: [repository, getpid()])
    }

    /// A repository's run is over, in one transaction: the outcomes held back for its end (see
    /// `HeldOutcomes`), the run's result, and what `endRun` clears. A no-op repository is then two
    /// transactions a pass, this and `beginRun`, where it was seven.
    public func finishRun(repository: String, id: Int64, result: RunResult, summary: String?, outcomes: [RemoteOutcome]) throws {
        try write { db in
            for outcome in outcomes { try Self.record(db, outcome) }
            try db.cachedStatement(sql: "UPDATE run SET finishedAt = ?, result = ?, summary = ? WHERE id = ?")
                .execute(arguments: [Date(), result.rawValue, summary, id])
            try Self.end(db, repository: repository)
        }
    }

    /// The repositories with a run still marked `running` by another process (perhaps one that died).
    public func repositoriesWithUnfinishedRuns() throws -> [String] {
        try pool.read { db in
            try SyncRun.select(SyncRun.Columns.repository, as: String.self).distinct()
                .filter(SyncRun.Columns.result == RunResult.running && SyncRun.Columns.pid != getpid())
                .order(SyncRun.Columns.repository).fetchAll(db)
        }
    }

    /// Records the runs left `running` as interrupted and drops the lease: call with the repository's lock held,
    /// which proves that no process is running them.
    public func markUnfinishedRunsInterrupted(repository: String) throws {
        try write { db in
            try Self.markInterrupted(db, SyncRun.Columns.repository == repository && SyncRun.Columns.pid != getpid())
            _ = try Lease.filter(Lease.Columns.repository == repository && Lease.Columns.pid != getpid()).deleteAll(db)
        }
    }

    /// The repositories whose latest run was interrupted: a restart runs them first.
    public func repositoriesLastInterrupted() throws -> Set<String> {
        try pool.read { db in
            Set(try String.fetchAll(db, sql: """
                SELECT repository FROM run WHERE id IN (SELECT MAX(id) FROM run GROUP BY repository) AND result = ?
                """, arguments: [RunResult.interrupted]))
        }
    }

    /// The runs `filter` selects that are still `running`, recorded as interrupted.
    private static func markInterrupted(_ db: Database, _ filter: SQLExpression) throws {
        _ = try SyncRun.filter(filter && SyncRun.Columns.result == RunResult.running)
            .updateAll(db, SyncRun.Columns.result.set(to: RunResult.interrupted), SyncRun.Columns.finishedAt.set(to: Date()),
                       SyncRun.Columns.summary.set(to: "the process stopped before the run finished"))
    }

    public func lease(repository: String) throws -> Lease? {
        try pool.read { db in try Lease.fetchOne(db, key: repository) }
    }
}

/// Why the state database cannot be used as it is.
public enum StateError: Error, Sendable, CustomStringConvertible, Equatable {
    case newerSchema(path: String, unknown: [String], known: String)
    case emptyFile(String)

    public var description: String {
        switch self {
        case let .newerSchema(path, unknown, known):
            return "\(path) was written by a newer gitmirror (it has schema \(unknown.joined(separator: ", ")); this one knows up to \(known)): this gitmirror only reads it and records nothing. Run the newer gitmirror, or move the database away to start a new history"
        case .emptyFile(let path):
            return "\(path) is an empty file, not a gitmirror database: it was truncated or replaced. Restore it from a backup, or move it away and gitmirror starts a new history"
        }
    }
}
