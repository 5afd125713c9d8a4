import Foundation
import GRDB
import GRDBSQLite

/// Runs, each remote's outcome, the journal of every ref moved, and the leases that keep one run per repository.
extension StateStore {
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
            _ = try SyncRun.filter(key: id).updateAll(db, SyncRun.Columns.finishedAt.set(to: StoredDate.text(Date())), SyncRun.Columns.result.set(to: result),
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

    static func record(_ db: Database, _ outcome: RemoteOutcome) throws {
        let state = outcome.state
        if let runId = state.lastRunId { try dropPending(db, runId: runId, repository: state.repository, remote: state.remote) }
        try db.cachedStatement(sql: upsertRemoteState).execute(arguments: [
            state.repository, state.remote, state.role.rawValue, state.url, state.state.rawValue, state.lastAttempt.map(StoredDate.text), state.lastSuccess.map(StoredDate.text),
            state.lastErrorClass?.rawValue, state.lastError, state.refsFingerprint, state.lastRunId, state.head,
        ])
        var stamp = Stamp()
        for var ref in outcome.refs {
            // A ref left alone again (kept, diverged), or refused again for the same tips in the same words
            // (a rewind an append-only server refuses), is news only when something about it changed: a
            // daemon syncing every few minutes for a year must not bury the journal in repeats.
            if ref.outcome == .kept || ref.outcome == .rejected, let last = try RefUpdate
                .filter(RefUpdate.Columns.repository == ref.repository && RefUpdate.Columns.remote == ref.remote && RefUpdate.Columns.ref == ref.ref)
                .order(RefUpdate.Columns.id.desc).fetchOne(db),
                last.outcome == ref.outcome, last.action == ref.action, last.oldOid == ref.oldOid, last.newOid == ref.newOid,
                ref.outcome == .kept || (last.message == ref.message && last.backupRef == ref.backupRef) {
                continue
            }
            try insert(db, &ref, stamp: &stamp)
        }
    }

    /// The text of the last date written: a remote's rows share one date (20,000 of them in a first seed).
    struct Stamp {
        private var date: Date?
        private var text = ""

        mutating func text(_ date: Date) -> String {
            if date != self.date { (self.date, text) = (date, StoredDate.text(date)) }
            return text
        }
    }

    /// One journal row, through a cached statement whose values are bound with SQLite's own calls:
    /// GRDB's Codable insert took half a second for the 20,000 rows of a first seed, its statement
    /// arguments (a boxed value each) still a tenth. Stepping the statement past GRDB skips only its
    /// transaction observers (the store registers none) and its schema cache (an INSERT changes no
    /// schema); a failure still throws and rolls the write back. JournalRowTests holds the rows to
    /// what GRDB's own insert stores.
    static func insert(_ db: Database, _ ref: inout RefUpdate, stamp: inout Stamp) throws {
        guard ref.id == nil else { return try ref.insert(db) }
        let statement = try db.cachedStatement(sql: """
            INSERT INTO ref_update (runId, repository, remote, ref, oldOid, newOid, action, outcome, message, backupRef, recordedAt)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let raw = statement.sqliteStatement
        defer {
            sqlite3_reset(raw)
            sqlite3_clear_bindings(raw)
        }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        func bind(_ index: Int32, _ text: String?) {
            guard var text else { sqlite3_bind_null(raw, index); return }
            text.withUTF8 { bytes in
                _ = bytes.withMemoryRebound(to: CChar.self) { chars in
                    guard let start = chars.baseAddress else { return sqlite3_bind_text(raw, index, "", 0, transient) }
                    return sqlite3_bind_text(raw, index, start, Int32(chars.count), transient)
                }
            }
        }
        sqlite3_bind_int64(raw, 1, ref.runId)
        bind(2, ref.repository)
        bind(3, ref.remote)
        bind(4, ref.ref)
        bind(5, ref.oldOid)
        bind(6, ref.newOid)
        bind(7, ref.action.rawValue)
        bind(8, ref.outcome.rawValue)
        bind(9, ref.message)
        bind(10, ref.backupRef)
        bind(11, stamp.text(ref.recordedAt))
        let code = sqlite3_step(raw)
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                                sql: statement.sql)
        }
        ref.id = db.lastInsertedRowID
    }

    /// Journal rows that belong to no remote's outcome (the cache's repairs, the refs a stopped run applied);
    /// `replacingPending`: that run's pending rows for that remote give way to them.
    public func recordJournal(_ refs: [RefUpdate], replacingPending: (runId: Int64, remote: String)? = nil) throws {
        try write { db in
            if let replacingPending, let repository = refs.first?.repository {
                try Self.dropPending(db, runId: replacingPending.runId, repository: repository, remote: replacingPending.remote)
            }
            var stamp = Stamp()
            for var ref in refs { try Self.insert(db, &ref, stamp: &stamp) }
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

    static func dropPending(_ db: Database, runId: Int64, repository: String, remote: String) throws {
        try db.cachedStatement(sql: "DELETE FROM ref_update WHERE runId = ? AND repository = ? AND remote = ? AND outcome = ?")
            .execute(arguments: [runId, repository, remote, RefUpdate.pending])
    }

    /// Settles the pending rows an earlier run of this remote left (it died during its push) from what
    /// the remote holds now: `applied` when it holds the new tip (or no ref, for a delete), `failed` when
    /// it still holds the old one, `unknown` otherwise. Returns how many were settled.
    @discardableResult
    /// `current` (the secondary's refs, name → id) is asked for only when there is something to settle:
    /// a pass almost never has, and the secondary may hold 20,000 refs.
    public func settlePending(repository: String, remote: String, holding current: () -> [String: String], before runId: Int64?) throws -> Int {
        var request = RefUpdate.filter(RefUpdate.Columns.repository == repository && RefUpdate.Columns.remote == remote
                                       && RefUpdate.Columns.outcome == RefUpdate.pending)
        if let runId { request = request.filter(RefUpdate.Columns.runId != runId) }
        if try pool.read({ db in try request.fetchCount(db) }) == 0 { return 0 }
        let current = current()
        return try write { db in
            let rows = try request.fetchAll(db)
            for var row in rows {
                let now = current[row.ref]
                let holds = now.map { "holds \($0.prefix(10))" } ?? "has no such ref"
                if now == row.newOid {
                    row.outcome = .applied
                } else if now == row.oldOid {
                    row.outcome = .failed
                } else {
                    row.outcome = .unknown
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

    /// The backup ref an earlier run made of `ref`'s tip `oldOid` on `remote`, if one did: a tip is backed up once.
    public func backupRef(repository: String, remote: String, ref: String, oldOid: String) throws -> String? {
        try pool.read { db in
            try RefUpdate.filter(RefUpdate.Columns.repository == repository && RefUpdate.Columns.remote == remote && RefUpdate.Columns.ref == ref)
                .filter(RefUpdate.Columns.oldOid == oldOid && RefUpdate.Columns.backupRef != nil)
                .order(RefUpdate.Columns.id.desc).fetchOne(db)?.backupRef
        }
    }

    /// One remote's state as the last run left it.
    public func remoteState(repository: String, remote: String) throws -> RemoteState? {
        try pool.read { db in
            try RemoteState.filter(RemoteState.Columns.repository == repository && RemoteState.Columns.remote == remote).fetchOne(db)
        }
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
            try DatabaseValue.fetchOne(db, sql: "SELECT MIN(startedAt) FROM run WHERE repository = ?", arguments: [repository]).flatMap(StoredDate.date)
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

    /// What gitmirror last gave each of `refs` on `remote` (the newest create or update it applied, as
    /// hex); a ref it never gave a value is not in the answer: only the secondary ever had it.
    public func refsMirrored(repository: String, remote: String, among refs: [String]) throws -> [String: String] {
        var found: [String: String] = [:]
        try pool.read { db in
            for chunk in stride(from: 0, to: refs.count, by: 500).map({ Array(refs[$0..<min($0 + 500, refs.count)]) }) {
                let rows = try RefUpdate
                    .filter(RefUpdate.Columns.repository == repository && RefUpdate.Columns.remote == remote)
                    .filter(chunk.contains(RefUpdate.Columns.ref))
                    .filter(RefUpdate.Columns.outcome == RefResult.applied.rawValue)
                    .filter([RefAction.create, .fastForward, .force].map(\.rawValue).contains(RefUpdate.Columns.action))
                    .order(RefUpdate.Columns.id).fetchAll(db)
                for row in rows { found[row.ref] = row.newOid }
            }
        }
        return found
    }

    // MARK: accepted divergences

    /// Accepts the divergence the journal last recorded for `ref` on `remote`: from now on that ref is
    /// left as it is without counting as diverged, until the secondary's or the primary's tip moves.
    /// Refused, saying why, when the ref's last entry is not a divergence.
    public func acceptDivergence(repository: String, remote: String, ref: String, at now: Date = Date()) throws -> AcceptedDivergence {
        try write { db in
            let last = try RefUpdate
                .filter(RefUpdate.Columns.repository == repository && RefUpdate.Columns.remote == remote && RefUpdate.Columns.ref == ref)
                .order(RefUpdate.Columns.id.desc).fetchOne(db)
            guard let last, last.action == .diverged, let secondary = last.oldOid, let primary = last.newOid else {
                throw SyncFailure(.config, last.map { "\(ref) on \(remote) is not diverged: its last entry is \($0.action.rawValue), \($0.outcome.rawValue) (gitmirror history \(repository) --remote \(remote) --ref \(ref))" }
                                  ?? "the journal has no entry for \(ref) on \(remote): run a sync first, then accept what it reports diverged")
            }
            let accepted = AcceptedDivergence(repository: repository, remote: remote, ref: ref, secondaryOid: secondary, primaryOid: primary, acceptedAt: now)
            try accepted.save(db)
            return accepted
        }
    }

    /// The divergences accepted on `remote`, by ref.
    public func acceptedDivergences(repository: String, remote: String) throws -> [String: AcceptedDivergence] {
        try pool.read { db in
            let rows = try AcceptedDivergence.filter(AcceptedDivergence.Columns.repository == repository && AcceptedDivergence.Columns.remote == remote).fetchAll(db)
            return Dictionary(rows.map { ($0.ref, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }

    // MARK: leases

    /// Records that this process holds the repository; returns the lease it replaced, if any
    /// (left by a process that died while holding it).
    @discardableResult
    static func takeLease(_ db: Database, repository: String) throws -> Lease? {
        let previous = try Lease.fetchOne(db.cachedStatement(sql: "SELECT * FROM lease WHERE repository = ?"), arguments: [repository])
        if let previous {
            // Its holder died mid-run: say so in the journal rather than leave it "running".
            try markInterrupted(db, SyncRun.Columns.repository == repository && SyncRun.Columns.pid == previous.pid)
        }
        let now = StoredDate.text(Date())
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
                .execute(arguments: [repository, StoredDate.text(Date()), RunResult.running.rawValue, trigger, getpid()])
            return (previous, db.lastInsertedRowID)
        }
    }

    /// A repository's run is over: what it showed as in progress goes, and so does its lease.
    public func endRun(repository: String) throws {
        try write { db in try Self.end(db, repository: repository) }
    }

    static func end(_ db: Database, repository: String) throws {
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
                .execute(arguments: [StoredDate.text(Date()), result.rawValue, summary, id])
            if result == .ok { try db.cachedStatement(sql: Self.replaceQuietRun).execute(arguments: [repository, id, summary, repository]) }
            try Self.end(db, repository: repository)
        }
    }

    /// A run that ends well takes the place of the run before it when that one changed nothing (ok, no
    /// journal row, the same summary, no remote's state naming it, not the repository's first): a
    /// fleet passing every five minutes keeps one quiet run per repository, not one per pass.
    private static let replaceQuietRun = """
        DELETE FROM run WHERE id = (SELECT MAX(id) FROM run WHERE repository = ?1 AND id < ?2)
            AND result = 'ok' AND summary IS ?3
            AND id > (SELECT MIN(id) FROM run WHERE repository = ?4)
            AND NOT EXISTS (SELECT 1 FROM ref_update WHERE ref_update.runId = run.id)
            AND NOT EXISTS (SELECT 1 FROM remote_state WHERE remote_state.lastRunId = run.id)
        """

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
    static func markInterrupted(_ db: Database, _ filter: SQLExpression) throws {
        _ = try SyncRun.filter(filter && SyncRun.Columns.result == RunResult.running)
            .updateAll(db, SyncRun.Columns.result.set(to: RunResult.interrupted), SyncRun.Columns.finishedAt.set(to: StoredDate.text(Date())),
                       SyncRun.Columns.summary.set(to: "the process stopped before the run finished"))
    }

    public func lease(repository: String) throws -> Lease? {
        try pool.read { db in try Lease.fetchOne(db, key: repository) }
    }
}
