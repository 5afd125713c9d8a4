import Foundation
import MirrorCore
import Testing
import TestSupport

/// What a sync does to refs, against git daemon on loopback.
@Suite(.onTestThreads) struct SyncBehaviourTests {
    @Test func newCommitsBranchesAndTagsReachTheSecondary() throws {
        // Given a secondary that was synced once
        let (scenario, backup) = try Scenario.withBackup("new-work", synced: true)

        // When the primary gains commits, a branch and a tag
        try scenario.primary.commit("second")
        try scenario.primary.commit("topic", on: "topic")
        try scenario.primary.tag("v2", message: "two")
        let output = try scenario.gitmirror("sync")

        // Then the secondary has them, main moved by fast-forward, and history says so
        #expect(output.status == 0, "\(output)")
        #expect(try backup.refs() == scenario.primary.refs())
        let history = try scenario.store().refHistory(repository: "app", remote: "backup")
        #expect(history.contains { $0.ref == "refs/heads/main" && $0.action == .fastForward && $0.outcome == .applied })
        #expect(history.contains { $0.ref == "refs/heads/topic" && $0.action == .create })
        #expect(history.contains { $0.ref == "refs/tags/v2" && $0.action == .create })
    }

    /// A branch `old` mirrored to `backup` once, then deleted on the primary and synced again: its old tip and the second sync.
    func deleteMirroredBranch(_ name: String, options: String = "") throws -> (scenario: Scenario, backup: BareRepository, oldTip: String, output: Shell.Output) {
        let (scenario, backup, oldTip) = try Scenario.withMirroredBranch(name, "old", options: options)
        try scenario.primary.deleteRef("refs/heads/old")
        return (scenario, backup, oldTip, try scenario.gitmirror("sync"))
    }

    @Test func quietSyncsReplaceEachOtherInsteadOfPilingUp() throws {
        // Given a repository synced once (its refs created), then synced ten times with nothing to do
        let (scenario, _) = try Scenario.withBackup("quiet-runs", synced: true)
        for _ in 0..<10 { #expect(try scenario.gitmirror("sync").status == 0) }

        // Then the runs table holds the run that moved refs and one quiet run, the newest
        let runs = try scenario.store().runs(repository: "app")
        #expect(runs.count == 2, "\(runs.map { ($0.id ?? 0, $0.result) })")
        #expect(try scenario.state("backup")?.lastRunId == runs.first?.id)
        #expect(try !scenario.store().refHistory(repository: "app").isEmpty)

        // And a run that does something is kept (taking the quiet run's place), followed again by one
        // quiet run however many pass
        try scenario.primary.commit("second")
        for _ in 0..<3 { #expect(try scenario.gitmirror("sync").status == 0) }
        let afterChange = try scenario.store().runs(repository: "app")
        #expect(afterChange.count == 3, "\(afterChange.map { ($0.id ?? 0, $0.result, $0.summary ?? "") })")
        #expect(try scenario.store().refHistory(repository: "app", ref: "refs/heads/main").count == 2)
    }

    @Test func aCacheWithTooManyPacksIsRepackedKeepingEveryRefAndBackup() throws {
        // Given a mirrored repository whose cache holds more packs than its limit (each fetch adds
        // one; here made directly) and a backup ref of an object no branch reaches any more
        let (scenario, backup) = try Scenario.withBackup("repack", synced: true)
        let cache = scenario.cache.path
        let orphan = try Shell.run(["git", "--git-dir=\(cache)", "hash-object", "-w", "--stdin"], input: "kept by a backup\n").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try Shell.run(["git", "--git-dir=\(cache)", "update-ref", "refs/gitmirror/backup/backup/refs/heads/gone@20261203T000000Z", orphan])
        for index in 0...RepositorySync.cachePackLimit {
            let filler = try Shell.run(["git", "--git-dir=\(cache)", "hash-object", "-w", "--stdin"], input: "filler \(index)\n").stdout
            try Shell.run(["git", "--git-dir=\(cache)", "pack-objects", "-q", cache + "/objects/pack/pack"], input: filler)
        }
        func packs() throws -> Int { try FileManager.default.contentsOfDirectory(atPath: cache + "/objects/pack").filter { $0.hasSuffix(".pack") }.count }
        #expect(try packs() > RepositorySync.cachePackLimit)

        // When the next sync fetches something
        try scenario.primary.commit("second")
        let output = try scenario.gitmirror("sync")

        // Then the cache is one pack again, its refs and backups intact, and the mirror in step
        #expect(output.status == 0, "\(output)")
        let after = try packs()
        #expect(after <= 2, "\(after)")
        #expect(try Shell.run(["git", "--git-dir=\(cache)", "cat-file", "-t", orphan]).stdout.hasPrefix("blob"))
        #expect(try Shell.run(["git", "--git-dir=\(cache)", "fsck", "--connectivity-only"], check: false).status == 0)
        #expect(try backup.refs() == scenario.primary.refs())
    }

    @Test func branchDeletedOnThePrimaryIsKeptWithoutPrune() throws {
        // Given a mirrored branch, when it is deleted on the primary and prune is off
        let (scenario, backup, _, output) = try deleteMirroredBranch("keep-deleted")

        // Then the secondary keeps it, the sync is in step, and the journal says kept
        #expect(output.status == 0, "\(output)")
        #expect(try backup.refs()["refs/heads/old"] != nil)
        let rows = try scenario.store().refHistory(repository: "app", ref: "refs/heads/old")
        #expect(rows.first?.action == .keep && rows.first?.outcome == .kept)

        #expect(rows.first?.message == "deleted on the primary; kept (prune is off)", "\(rows)")

        // And syncing again does not repeat the same entry in the journal
        #expect(try scenario.gitmirror("sync").status == 0)
        #expect(try scenario.store().refHistory(repository: "app", ref: "refs/heads/old").filter { $0.action == .keep }.count == 1)

        // And a branch only the secondary ever had is not said to be deleted on the primary
        try backup.commit("theirs", on: "theirs")
        #expect(try scenario.gitmirror("sync").status == 0)
        let theirs = try #require(try scenario.store().refHistory(repository: "app", ref: "refs/heads/theirs").first)
        #expect(theirs.action == .keep && theirs.message == "not on the primary, and gitmirror has no record of mirroring it here; kept (prune is off)",
                "\(theirs)")
    }

    @Test func branchDeletedOnThePrimaryIsDeletedWithPruneAndBackedUp() throws {
        // Given a mirrored branch, when it is deleted on the primary and prune is on
        let (scenario, backup, oldTip, output) = try deleteMirroredBranch("prune", options: "\n  prune: true")

        #expect(output.status == 0, "\(output)")
        #expect(try backup.refs()["refs/heads/old"] == nil)
        #expect(try backup.refs()["refs/heads/main"] != nil)
        let row = try #require(try scenario.store().refHistory(repository: "app", ref: "refs/heads/old").first)
        #expect(row.action == .delete && row.outcome == .applied && row.oldOid == oldTip)
        let backupRef = try #require(row.backupRef)
        #expect(try scenario.cache.refs()[backupRef] == oldTip)
    }

    @Test func deletionsBeyondMaxDeletesDeleteNothing() throws {
        let scenario = try Scenario("max-deletes")
        try scenario.primary.commit("first")
        for name in ["a", "b", "c"] { try scenario.primary.commit(name, on: name) }
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))\n  prune: true\n  max_deletes: 2")
        #expect(try scenario.gitmirror("sync").status == 0)

        // When three branches go but only two deletions are allowed
        for name in ["a", "b", "c"] { try scenario.primary.deleteRef("refs/heads/\(name)") }
        let output = try scenario.gitmirror("sync")

        // Then none is deleted and the remote fails loudly
        #expect(output.status == 1, "\(output)")
        #expect(output.stdout.contains("max_deletes"))
        let refs = try backup.refs()
        #expect(["a", "b", "c"].allSatisfy { refs["refs/heads/\($0)"] != nil })
        let state = try #require(try scenario.state("backup"))
        #expect(state.state == .failing && state.lastErrorClass == .protected)
    }

    @Test func emptyPrimaryStopsBeforeAnythingIsFetchedPrunedOrPushed() throws {
        let scenario = try Scenario("primary-empty")
        try scenario.primary.commit("first")
        try scenario.primary.commit("other", on: "other")
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))\n  prune: true")
        #expect(try scenario.gitmirror("sync").status == 0)
        let before = try backup.refs()
        let cacheBefore = try scenario.cache.refs()

        // When every ref disappears from the primary
        for ref in try scenario.primary.refs().keys { try scenario.primary.deleteRef(ref) }
        let output = try scenario.gitmirror("sync")

        // Then the sync fails with primary_empty and nothing changed anywhere
        #expect(output.status == 1, "\(output)")
        #expect(output.stdout.contains("primary_empty"))
        #expect(try backup.refs() == before)
        #expect(try scenario.cache.refs() == cacheBefore)
        let primary = try #require(try scenario.state("primary"))
        #expect(primary.state == .failing && primary.lastErrorClass == .primaryEmpty)
    }

    @Test func divergedRefIsKeptAndReportedWhileOtherRefsArePushed() throws {
        let (scenario, backup) = try Scenario.withBackup("diverged", synced: true)

        // Given someone committed on the secondary, and the primary moved on too
        let theirs = try backup.commit("work only on the secondary")
        try scenario.primary.commit("second")
        let topic = try scenario.primary.commit("topic", on: "topic")
        let output = try scenario.gitmirror("sync")

        // Then their commit is kept, reported as diverged, and the new branch still arrives
        #expect(output.status == 1, "\(output)")
        #expect(try backup.refs()["refs/heads/main"] == theirs)
        #expect(try backup.refs()["refs/heads/topic"] == topic)
        let state = try #require(try scenario.state("backup"))
        #expect(state.state == .diverged && state.lastErrorClass == .diverged)
        #expect(state.lastError?.contains("refs/heads/main") == true)
    }

    @Test func forcedDivergedRefIsOverwrittenAfterItsOldTipIsBackedUp() throws {
        let (scenario, backup) = try Scenario.withBackup("force", options: "  force: true", synced: true)
        let theirs = try backup.commit("work only on the secondary")
        let ours = try scenario.primary.commit("second")

        let output = try scenario.gitmirror("sync")

        #expect(output.status == 0, "\(output)")
        #expect(try backup.refs()["refs/heads/main"] == ours)
        // The overwritten tip lives on in the cache, under a backup ref the journal names
        let row = try #require(try scenario.store().refHistory(repository: "app", ref: "refs/heads/main").first)
        #expect(row.action == .force && row.outcome == .applied && row.oldOid == theirs && row.newOid == ours)
        let backupRef = try #require(row.backupRef)
        #expect(backupRef.hasPrefix("refs/gitmirror/backup/backup/refs/heads/main@"))
        // stamped with the time it was written, in UTC
        let stamp = String(backupRef.split(separator: "@").last ?? "")
        #expect(stamp.wholeMatch(of: /20[0-9]{6}T[0-9]{6}Z/) != nil, "\(stamp)")
        #expect(try scenario.cache.refs()[backupRef] == theirs)
        let history = try scenario.gitmirror("history", "app", "--ref", "refs/heads/main")
        #expect(history.status == 0 && history.stdout.contains(backupRef), "\(history)")
    }

    @Test func movedTagIsDivergedUnlessForced() throws {
        let scenario = try Scenario("moved-tag")
        try scenario.primary.commit("first")
        try scenario.primary.tag("v1")
        let strict = try scenario.secondary("strict")
        let forced = try scenario.secondary("forced")
        try scenario.configure(secondaries: """
            - name: strict
              url: \(scenario.url(strict))
            - name: forced
              url: \(scenario.url(forced))
              force: true
            """)
        #expect(try scenario.gitmirror("sync").status == 0)
        let original = try strict.refs()["refs/tags/v1"]

        // When the tag is moved on the primary (to a commit that descends from it)
        try scenario.primary.commit("second")
        let moved = try scenario.primary.tag("v1")
        let output = try scenario.gitmirror("sync")

        // Then the strict secondary keeps the old tag and reports it; the forced one follows
        #expect(output.status == 1, "\(output)")
        #expect(try strict.refs()["refs/tags/v1"] == original)
        #expect(try forced.refs()["refs/tags/v1"] == moved)
        #expect(try scenario.state("strict")?.lastErrorClass == .diverged)
        #expect(try scenario.state("forced")?.state == .ok)
    }

    @Test func refRejectedByAHookFailsThatRemoteButTheOtherRefsLand() throws {
        let scenario = try Scenario("hook")
        try scenario.primary.commit("first")
        let blocked = try scenario.primary.commit("blocked", on: "blocked")
        let backup = try scenario.secondary("backup")
        try backup.refuse("refs/heads/blocked", saying: "policy: blocked is frozen")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))")

        let output = try scenario.gitmirror("sync")

        #expect(output.status == 1, "\(output)")
        #expect(try backup.refs()["refs/heads/main"] != nil)
        #expect(try backup.refs()["refs/heads/blocked"] == nil)
        let row = try #require(try scenario.store().refHistory(repository: "app", ref: "refs/heads/blocked").first)
        #expect(row.outcome == .rejected && row.newOid == blocked)
        #expect(row.message?.contains("blocked is frozen") == true, "\(row.message ?? "")")
        #expect(try scenario.state("backup")?.lastErrorClass == .rejected)
    }

    @Test func aServerThatSaysOkButHoldsSomethingElseIsAFailure() throws {
        // Given a secondary whose post-receive hook moves main back to an older commit after accepting the push
        let scenario = try Scenario("verify")
        let first = try scenario.primary.commit("first")
        let second = try scenario.primary.commit("second")
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))")
        try backup.installHook("post-receive", "#!/bin/sh\ngit update-ref refs/heads/main \(first)\n")

        // When gitmirror syncs
        let output = try scenario.gitmirror("sync")

        // Then the run fails: the ref is recorded as failed, with what the server holds, not as applied
        #expect(output.status == 1, "\(output)")
        #expect(try backup.refs()["refs/heads/main"] == first)
        let row = try #require(try scenario.store().refHistory(repository: "app", ref: "refs/heads/main").first)
        #expect(row.outcome == .failed && row.newOid == second, "\(row)")
        #expect(row.message?.contains("the server reported success but holds \(first.prefix(7))") == true, "\(row.message ?? "")")
        #expect(try scenario.state("backup")?.state != .ok)
    }

    @Test func syncWithNothingToDoFetchesNothingAndPushesNothing() throws {
        let (scenario, _) = try Scenario.withBackup("no-op", synced: true)
        let logBefore = scenario.daemon.logText

        let output = try scenario.gitmirror("sync")

        #expect(output.status == 0, "\(output)")
        #expect(output.stdout.contains("up to date"))
        let newLog = String(scenario.daemon.logText.dropFirst(logBefore.count))
        #expect(!newLog.contains("receive-pack"), "\(newLog)")
        // One listing of the primary and one of the secondary: no fetch.
        let uploads = newLog.split(separator: "\n").filter { $0.contains("Request upload-pack") }
        #expect(uploads.count == 2, "\(newLog)")
    }

    @Test func syncForgetsOldQuietRunsAndKeepsTheJournal() throws {
        // Given a first sync that created refs and a second with nothing to do, both long ago
        let (scenario, _) = try Scenario.withBackup("retention")
        let yaml = try String(contentsOf: scenario.config, encoding: .utf8)
        try ("retention:\n  runs: 7d\n" + yaml).write(to: scenario.config, atomically: true, encoding: .utf8)
        #expect(try scenario.gitmirror("sync").status == 0)
        #expect(try scenario.gitmirror("sync").status == 0)
        let before = try scenario.store().runs(repository: "app").compactMap(\.id)
        #expect(before.count == 2)
        let database = scenario.sandbox.path("state/gitmirror.sqlite").path
        try Shell.run(["python3", "-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("UPDATE run SET startedAt = '2020-01-01 00:00:00.000', finishedAt = '2020-01-01 00:00:01.000'")
            db.commit()
            """, database])

        // When the next sync runs
        let output = try scenario.gitmirror("sync")

        // Then the old no-op run is gone; the run that created refs and the new one remain, with the journal
        #expect(output.status == 0, "\(output)")
        let after = try scenario.store().runs(repository: "app").compactMap(\.id)
        #expect(after.count == 2 && after.last == before.last && !after.contains(before.first!), "before \(before), after \(after)")
        #expect(try scenario.store().refHistory(repository: "app", remote: "backup").contains { $0.action == .create })
    }

    @Test func repositoriesSyncInParallelSoAHungOneHoldsUpNoOther() throws {
        // Given two repositories: `hung` (listed first) whose secondary never answers for 10 s
        // (long enough for `quick` to finish on a loaded CI machine), and `quick`
        let (scenario, other) = try Scenario.withSecondary("parallel-repositories", named: "other-primary")
        try other.commit("other")
        let quickBackup = try scenario.secondary("quick-backup")
        let silent = try SilentServer(sandbox: scenario.sandbox)
        func configure(_ quickSecondary: String) throws {
            try scenario.configure(repositories: [
                .init("hung", primary: scenario.url(scenario.primary),
                      secondaries: [#"{name: silent, url: "git://127.0.0.1:\#(silent.port)/repo.git", stall_timeout: 10s}"#]),
                .init("quick", primary: scenario.url(other), secondaries: [#"{name: backup, url: "\#(quickSecondary)"}"#]),
            ])
        }
        try configure(scenario.url(quickBackup))

        // When both are synced with two jobs
        let output = try scenario.gitmirror("sync", "--jobs", "2")

        // Then `quick` is in step and its run finished while `hung` was still waiting on its silent secondary
        #expect(output.status == 1, "\(output)")
        #expect(try quickBackup.refs() == other.refs())
        let hung = try #require(try scenario.store().runs(repository: "hung").first)
        let quick = try #require(try scenario.store().runs(repository: "quick").first)
        #expect(try #require(quick.finishedAt) < hung.finishedAt!, "quick \(quick), hung \(hung)")
        // and the table lists the repositories in the order of the file
        let rows = output.stdout.split(separator: "\n").filter { ["hung", "quick"].contains($0.split(separator: " ").first.map(String.init) ?? "") }
        #expect(rows.first?.hasPrefix("hung") == true && rows.last?.hasPrefix("quick") == true, "\(output.stdout)")

        // When one repository at a time may fetch or push (--jobs 1), `quick` still does not wait: `hung`
        // waits on a listing of its silent secondary, and a listing holds no transfer slot
        let secondBackup = try scenario.secondary("quick-backup-2")
        try configure(scenario.url(secondBackup))
        #expect(try scenario.gitmirror("sync", "--jobs", "1").status == 1)
        #expect(try secondBackup.refs() == other.refs())
        let hungAgain = try #require(try scenario.store().runs(repository: "hung").first)
        let quickAgain = try #require(try scenario.store().runs(repository: "quick").first)
        #expect(try #require(quickAgain.finishedAt) < hungAgain.finishedAt!, "quick \(quickAgain), hung \(hungAgain)")
    }

    @Test func twoConcurrentSyncsTakeTurnsOnTheLock() throws {
        let scenario = try Scenario("concurrent")
        for index in 0..<20 { try scenario.primary.commit("commit \(index)", on: "branch-\(index % 5)") }
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))")

        // When two syncs start at once
        let results = concurrently(2) { _ in try? scenario.gitmirror("sync") }

        // Then both succeed, the secondary is right, and no lease is left behind
        #expect(results.count == 2)
        for output in results { #expect(output?.status == 0, "\(String(describing: output))") }
        #expect(try backup.refs() == scenario.primary.refs())
        #expect(try scenario.store().lease(repository: "app") == nil)
        // And they took turns: a run is recorded once the lock is held, and one ended before the other began
        let runs = try scenario.store().runs(repository: "app").sorted { $0.startedAt < $1.startedAt }
        #expect(runs.count == 2)
        if runs.count == 2, let firstEnd = runs[0].finishedAt {
            #expect(firstEnd <= runs[1].startedAt, "the runs overlapped: \(runs)")
        }
    }
}
