import Foundation
import Testing
import TestSupport
@testable import MirrorCore

/// Retention keeps gitmirror.sqlite bounded without losing what a user relies on:
/// the journal of moved refs (by default), every backup record, each remote's last run.
@Suite(.onTestThreads) struct RetentionTests {
    let sandbox: Sandbox
    let store: StateStore
    let later = Date().addingTimeInterval(100 * 86400)

    init() throws {
        sandbox = try Sandbox("retention")
        store = try StateStore(path: sandbox.path("state/gitmirror.sqlite").path)
    }

    /// A finished run of `app` with the given ref rows; returns its id.
    func run(_ refs: [(action: RefAction, outcome: RefResult, backup: String?)] = [], stateNamesIt: Bool = false) throws -> Int64 {
        let id = try store.recordRunStarted(repository: "app", trigger: "manual")
        let rows = refs.map { ref in
            RefUpdate(id: nil, runId: id, repository: "app", remote: "backup", ref: "refs/heads/r\(id)", oldOid: nil,
                      newOid: String(repeating: "a", count: 40), action: ref.action, outcome: ref.outcome, message: nil,
                      backupRef: ref.backup, recordedAt: Date())
        }
        let state = RemoteState(repository: "app", remote: stateNamesIt ? "backup" : "other-\(id)", role: .secondary, url: "/srv/backup.git",
                                state: .ok, lastAttempt: Date(), lastSuccess: Date(), lastErrorClass: nil, lastError: nil,
                                refsFingerprint: nil, lastRunId: stateNamesIt ? id : nil)
        try store.recordRemoteOutcome(state, refs: rows)
        try store.recordRunFinished(id: id, result: .ok, summary: nil)
        return id
    }

    func runIDs() throws -> Set<Int64> { Set(try store.runs(limit: 10_000).compactMap(\.id)) }

    @Test func backupRefsAreStampedWithTheTimeInUTC() {
        #expect(SyncContext.backupStamp(Date(timeIntervalSince1970: 1_795_428_912.75)) == "20261123T101512Z")
        #expect(SyncContext.backupStamp(Date(timeIntervalSince1970: 0)) == "19700101T000000Z")
    }

    @Test func oldQuietRunsGoAndTheJournalStaysForeverByDefault() throws {
        // Given quiet runs, a run that moved a ref, one that forced with a backup, the run a remote's state names, and a running run
        _ = try run()
        _ = try run()
        let moved = try run([(.create, .applied, nil)])
        let forced = try run([(.force, .applied, "refs/gitmirror/backup/backup/refs/heads/main@20261122T100000Z")])
        let last = try run(stateNamesIt: true)
        let running = try store.recordRunStarted(repository: "app", trigger: "schedule")

        // When nothing is old yet, nothing goes
        #expect(try store.prune(Retention()) == StateStore.Pruned())

        // When 100 days have passed with the default retention (quiet runs 90 days, journal forever)
        let pruned = try store.prune(Retention(), now: later)

        // Then only the quiet runs are gone
        #expect(pruned == StateStore.Pruned(runs: 2, refUpdates: 0))
        #expect(try runIDs() == [moved, forced, last, running])
        #expect(try store.refHistory(repository: "app").count == 2)
    }

    @Test func aJournalRetentionForgetsMovedRefsButNeverBackups() throws {
        let moved = try run([(.create, .applied, nil), (.fastForward, .applied, nil)])
        let forced = try run([(.force, .applied, "refs/gitmirror/backup/backup/refs/heads/main@20261122T100000Z")])
        _ = moved

        var retention = Retention()
        retention.journal = 95 * 86400
        let pruned = try store.prune(retention, now: later)

        #expect(pruned == StateStore.Pruned(runs: 1, refUpdates: 2))
        #expect(try runIDs() == [forced])
        let history = try store.refHistory(repository: "app")
        #expect(history.map(\.runId) == [forced] && history.first?.backupRef != nil)
    }

    @Test func manyRunsArePrunedInSmallBatches() throws {
        for _ in 0..<7 { _ = try run() }
        let pruned = try store.prune(Retention(), now: later, batch: 3)
        #expect(pruned.runs == 7)
        #expect(try runIDs().isEmpty)
    }
}

/// The files beside the database: quarantined caches and the LFS store, pruned by age, and nothing
/// gitmirror did not write there.
@Suite(.onTestThreads) struct FileRetentionTests {
    @Test func oldQuarantinedCachesAndUnusedLFSObjectsGoAndTheRestStays() throws {
        let sandbox = try Sandbox("file-retention")
        let state = sandbox.path("state")
        let files = FileManager.default
        let old = Date().addingTimeInterval(-40 * 86400)
        func make(_ path: String, _ text: String = "x", at date: Date) throws {
            let url = state.appendingPathComponent(path)
            try files.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: false, encoding: .utf8)
            try files.setAttributes([.modificationDate: date], ofItemAtPath: url.path)
        }
        // Given a quarantined cache from 40 days ago and one from today
        try make("quarantine/app-20261020T000000Z.git/HEAD", at: old)
        try files.setAttributes([.modificationDate: old], ofItemAtPath: state.appendingPathComponent("quarantine/app-20261020T000000Z.git").path)
        try make("quarantine/app-20261203T000000Z.git/HEAD", at: Date())
        // and LFS objects: one unused for 40 days, one used today, and a file of another name
        let stale = "ab" + "cd" + String(repeating: "1", count: 60), fresh = "ab" + "cd" + String(repeating: "2", count: 60)
        try make("lfs/objects/ab/cd/\(stale)", "stale", at: old)
        try make("lfs/objects/ab/cd/\(fresh)", at: Date())
        try make("lfs/objects/ab/cd/notes.txt", at: old)

        // When the default retention runs: the quarantine stays, the stale object goes
        var retention = Retention()
        let first = FileRetention.prune(stateDirectory: state, retention: retention)
        #expect(first == FileRetention.Pruned(quarantined: 0, lfsObjects: 1, bytes: 5))
        #expect(!files.fileExists(atPath: state.appendingPathComponent("lfs/objects/ab/cd/\(stale)").path))
        #expect(files.fileExists(atPath: state.appendingPathComponent("lfs/objects/ab/cd/\(fresh)").path))
        #expect(files.fileExists(atPath: state.appendingPathComponent("lfs/objects/ab/cd/notes.txt").path))
        #expect(files.fileExists(atPath: state.appendingPathComponent("quarantine/app-20261020T000000Z.git").path))

        // When a quarantine retention of 30 days is configured: the old quarantined cache goes, today's stays
        retention.quarantine = 30 * 86400
        let second = FileRetention.prune(stateDirectory: state, retention: retention)
        #expect(second.quarantined == 1)
        #expect(!files.fileExists(atPath: state.appendingPathComponent("quarantine/app-20261020T000000Z.git").path))
        #expect(files.fileExists(atPath: state.appendingPathComponent("quarantine/app-20261203T000000Z.git/HEAD").path))

        // And an object touched by a push is fresh again
        try make("lfs/objects/ab/cd/\(stale)", at: old)
        FileRetention.touch(state.appendingPathComponent("lfs/objects/ab/cd/\(stale)"))
        #expect(FileRetention.prune(stateDirectory: state, retention: retention).lfsObjects == 0)
    }
}
