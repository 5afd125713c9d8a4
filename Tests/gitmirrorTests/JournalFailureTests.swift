import Foundation
import MirrorCore
import Testing
import TestSupport

/// Every moved ref is journaled, or the run says it is not: a state database that refuses the
/// journal makes the run out of step (exit 1) and says what it could not record.
@Suite(.onTestThreads) struct JournalFailureTests {
    @Test func aJournalTheDatabaseRefusesIsReportedAndTheRunExitsOne() throws {
        // Given a repository synced once, then a database that refuses every journal row (as a full or broken disk would)
        let (scenario, backup) = try Scenario.withBackup("journal-refused", synced: true)
        let database = scenario.sandbox.path("state/gitmirror.sqlite").path
        try Shell.run(["sqlite3", database,
                       "CREATE TRIGGER refuse_journal BEFORE INSERT ON ref_update BEGIN SELECT RAISE(ABORT, 'journal refused by the test'); END;"])
        let head = try scenario.primary.commit("second")

        // When gitmirror syncs the new commit
        let sync = try scenario.gitmirror("sync")
        let json = try scenario.gitmirror("sync", "--json")

        // Then the secondary has it, but the run is out of step and says that history does not show it
        #expect(try backup.refs()["refs/heads/main"] == head)
        #expect(sync.status == 1, "\(sync)")
        #expect(sync.stdout.contains("app: the state database did not record backup's outcome and 1 journal row"), "\(sync)")
        #expect(sync.stdout.contains("journal refused by the test"), "\(sync)")
        #expect(sync.stdout.contains("1 of 1 repository out of step"), "\(sync)")
        // (the second run moved nothing: nothing to journal, so it is in step again)
        #expect(json.status == 0, "\(json)")
    }
}
