import Foundation
import GRDB

/// What the daemon's status page reads: a version that changes when anything it shows may have,
/// and a repository's journal, backups and diverged refs.
extension StateStore {
    /// Changes whenever a run is recorded or ends, or a sync in progress moves on: the page's data is
    /// computed again only then.
    public func pageVersion() throws -> String {
        try pool.read { db in
            let runs = try Row.fetchOne(db, sql: "SELECT MAX(id), COUNT(finishedAt), MAX(finishedAt) FROM run")
            let progress = try Row.fetchOne(db, sql: "SELECT COUNT(*), MAX(updatedAt) FROM progress")
            let states = try Row.fetchOne(db, sql: "SELECT MAX(lastAttempt) FROM remote_state")
            func text(_ row: Row?, _ index: Int) -> String { row.flatMap { ($0[index] as DatabaseValue?)?.description } ?? "-" }
            return [text(runs, 0), text(runs, 1), text(runs, 2), text(progress, 0), text(progress, 1), text(states, 0)].joined(separator: "/")
        }
    }

    /// One page of a repository's journal, newest first, and whether older rows follow.
    public func journalPage(repository: String, offset: Int, limit: Int) throws -> (rows: [RefUpdate], more: Bool) {
        let rows = try pool.read { db in
            try RefUpdate.filter(RefUpdate.Columns.repository == repository)
                .order(RefUpdate.Columns.id.desc).limit(limit + 1, offset: max(0, offset)).fetchAll(db)
        }
        return (Array(rows.prefix(limit)), rows.count > limit)
    }

    /// The backups kept of a repository's overwritten refs, newest first.
    public func backups(repository: String) throws -> [RefUpdate] {
        try pool.read { db in
            try RefUpdate.filter(RefUpdate.Columns.repository == repository && RefUpdate.Columns.backupRef != nil)
                .order(RefUpdate.Columns.id.desc).fetchAll(db)
        }
    }

    /// The refs a remote's last run found diverged (kept and reported, not overwritten).
    public func divergedRefs(repository: String, remote: String, runId: Int64) throws -> [RefUpdate] {
        try pool.read { db in
            try RefUpdate.filter(RefUpdate.Columns.repository == repository && RefUpdate.Columns.remote == remote
                                 && RefUpdate.Columns.runId == runId && RefUpdate.Columns.action == RefAction.diverged.rawValue)
                .order(RefUpdate.Columns.ref).fetchAll(db)
        }
    }
}
