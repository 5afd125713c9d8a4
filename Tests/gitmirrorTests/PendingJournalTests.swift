import Foundation
import MirrorCore
import Testing
import TestSupport

/// A run killed during a forced update: the journal already says what it was overwriting and where
/// the old tip is kept, and the next run settles that row from what the secondary holds.
@Suite(.onTestThreads) struct PendingJournalTests {
    @Test func aForceInterruptedDuringItsPushIsInTheHistoryWithItsBackupAndSettledByTheNextRun() throws {
        // Given a secondary whose main diverged (it has a commit the primary lacks), force: true, and a
        // post-receive hook that signals once the secondary has taken the new tip, then holds the push open
        let (scenario, backup) = try Scenario.withBackup("pending-force", options: "  force: true", synced: true)
        let theirs = try backup.commit("only on the secondary")
        let ours = try scenario.primary.commit("rewritten on the primary")
        let marker = scenario.sandbox.path("received")
        try backup.installHook("post-receive", "#!/bin/sh\ntouch '\(marker.path)'\nsleep 20\n")

        // When the sync is killed while the secondary runs its hook
        let log = scenario.sandbox.path("killed.log")
        let sync = try Shell.start([Gitmirror.executable.path, "sync", "--config", scenario.config.path], log: log)
        #expect(eventually(within: 30) { FileManager.default.fileExists(atPath: marker.path) }, "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        sync.signal(SIGKILL)
        sync.wait()

        // Then the secondary holds the new tip, and history shows the force as pending, with the backup of the old tip
        #expect(try backup.refs()["refs/heads/main"] == ours)
        let rows = try scenario.store().refHistory(repository: "app", remote: "backup", ref: "refs/heads/main")
        let pending = try #require(rows.first { $0.outcome == RefUpdate.pending }, "\(rows)")
        #expect(pending.action == .force && pending.oldOid == theirs && pending.newOid == ours, "\(pending)")
        let backupRef = try #require(pending.backupRef)
        #expect(try scenario.cache.refs()[backupRef] == theirs)

        // When the next sync runs (the hook removed)
        try FileManager.default.removeItem(at: backup.url.appendingPathComponent("hooks/post-receive"))
        let next = try scenario.gitmirror("sync", "--lock-wait", "30s")

        // Then the row is settled as applied, and nothing is pending
        #expect(next.status == 0, "\(next)")
        let settled = try scenario.store().refHistory(repository: "app", remote: "backup", ref: "refs/heads/main")
        #expect(!settled.contains { $0.outcome == RefUpdate.pending }, "\(settled)")
        #expect(settled.first { $0.id == pending.id }?.outcome == .applied, "\(settled)")
        #expect(settled.first { $0.id == pending.id }?.message?.contains("settled by a later run") == true)
    }

    @Test func aForceThatCompletesLeavesNoPendingRow() throws {
        let (scenario, backup) = try Scenario.withBackup("pending-complete", options: "  force: true", synced: true)
        _ = try backup.commit("only on the secondary")
        _ = try scenario.primary.commit("rewritten")

        #expect(try scenario.gitmirror("sync").status == 0)

        let rows = try scenario.store().refHistory(repository: "app", remote: "backup", ref: "refs/heads/main")
        #expect(rows.filter { $0.action == .force }.count == 1, "\(rows)")
        #expect(rows.first { $0.action == .force }?.outcome == .applied)
        #expect(rows.first { $0.action == .force }?.backupRef != nil)
    }
}
