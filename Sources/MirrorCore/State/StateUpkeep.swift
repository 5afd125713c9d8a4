import Foundation
import GRDB

/// What keeps the database small and `status` current: retention, the schedule, full passes, change
/// checks and the progress of running syncs.
extension StateStore {
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

    static func pruneBatch(_ db: Database, quietBefore: Date, journalBefore: Date, batch: Int) throws -> Pruned {
        let ids = try Int64.fetchAll(db, sql: """
            SELECT id FROM run
            WHERE result != :running AND finishedAt IS NOT NULL AND finishedAt < :quietBefore
              AND id NOT IN (SELECT lastRunId FROM remote_state WHERE lastRunId IS NOT NULL)
              AND NOT EXISTS (SELECT 1 FROM ref_update u WHERE u.runId = run.id AND u.backupRef IS NOT NULL)
              AND (finishedAt < :journalBefore OR NOT EXISTS (SELECT 1 FROM ref_update u WHERE u.runId = run.id))
            ORDER BY id LIMIT :batch
            """, arguments: ["quietBefore": StoredDate.text(quietBefore), "journalBefore": StoredDate.text(journalBefore), "batch": batch, "running": RunResult.running])
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

}
