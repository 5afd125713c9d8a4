import Foundation
import GRDB
import Testing
import TestSupport
@testable import MirrorCore

/// Journal rows are bound with SQLite's own calls (StateStore.insert): what they store must be what
/// GRDB's own insert stores, value for value and type for type.
@Suite(.onTestThreads) struct JournalRowTests {
    @Test func aJournalRowIsStoredAsGRDBStoresIt() throws {
        // Given one run, and rows with every kind of value a journal row holds: absent ones, an empty
        // message, text beyond ASCII, a backup
        let sandbox = try Sandbox("journal-rows")
        let store = try StateStore(path: sandbox.path("state/gitmirror.sqlite").path)
        let runId = try store.recordRunStarted(repository: "app", trigger: "manual")
        let at = Date(timeIntervalSince1970: 1_795_428_912.25)
        let rows = [
            RefUpdate(id: nil, runId: runId, repository: "app", remote: "backup", ref: "refs/heads/main", oldOid: nil,
                      newOid: String(repeating: "a", count: 40), action: .create, outcome: .applied, message: nil, backupRef: nil, recordedAt: at),
            RefUpdate(id: nil, runId: runId, repository: "app", remote: "backup", ref: "refs/tags/naïve-✓", oldOid: String(repeating: "b", count: 40),
                      newOid: String(repeating: "c", count: 40), action: .force, outcome: .applied, message: "",
                      backupRef: "refs/gitmirror/backup/backup/refs/tags/naïve-✓@20261123T101512Z", recordedAt: at),
        ]

        // When they are journaled through the bound statement, and the same rows through GRDB's insert
        // (a row written before its push takes that path)
        try store.recordJournal(rows)
        try store.recordPending(rows)

        // Then each pair reads back alike, and SQLite holds the same types for both
        let read = try store.refHistory(repository: "app", limit: 10).sorted { $0.id! < $1.id! }
        #expect(read.count == 4)
        for (bound, grdb) in zip(read.prefix(2), read.suffix(2)) {
            #expect(bound.id != nil && bound.ref == grdb.ref && bound.oldOid == grdb.oldOid && bound.newOid == grdb.newOid)
            #expect(bound.action == grdb.action && bound.message == grdb.message && bound.backupRef == grdb.backupRef)
            #expect(bound.recordedAt == grdb.recordedAt && bound.runId == grdb.runId && bound.outcome == .applied)
        }
        #expect(read[1].message == "" && read[0].message == nil && read[1].ref == "refs/tags/naïve-✓")
        let types = try store.pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT typeof(runId), typeof(repository), typeof(oldOid), typeof(newOid), typeof(action), typeof(message),
                       typeof(backupRef), typeof(recordedAt), recordedAt FROM ref_update ORDER BY id
                """).map { row in (0..<9).map { String(describing: row[$0] as DatabaseValue) } }
        }
        #expect(types[0] == types[2], "\(types)")
        #expect(types[1] == types[3], "\(types)")
    }
}
