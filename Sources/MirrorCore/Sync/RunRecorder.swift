import Foundation
import Synchronization
import Git

/// What a run writes to the state database: each remote's outcome with its journal rows, the rows a push
/// is about to overwrite (pending), and what a stopped run left pending. A write that fails is never
/// swallowed: the run says what the database did not record, and is out of step.
extension SyncContext {
    /// Records a remote's outcome: at once, or held for the run's end when `held` takes it.
    func record(_ report: RemoteReport, runId: Int64, remote: RemoteSpec, fingerprint: String?, held: HeldOutcomes? = nil) {
        guard let store, let outcome = outcome(report, runId: runId, fingerprint: fingerprint, held: held) else { return }
        if let held, held.hold(outcome) { return }
        do {
            try store.recordRemoteOutcomes((held?.take() ?? []) + [outcome])
        } catch {
            progress(report.repository, report.remote, "could not record the outcome in SQLite: \(error)")
            held?.journalFailed("\(report.remote)'s outcome and \(outcome.refs.count) journal row\(outcome.refs.count == 1 ? "" : "s"): \(error)")
        }
    }

    /// Journals the refs a push is about to overwrite or delete, with their backups, as `pending`, before
    /// the push starts: if this process dies during it, history still shows the force and the backup
    /// (a later run settles the rows). Without that record nothing is overwritten.
    func journalPending(_ overwrites: [RefOutcome], of mirror: Mirror, _ secondary: RemoteSpec, runId: Int64?) throws {
        guard let store, let runId, !overwrites.isEmpty else { return }
        let now = Date()
        let rows = overwrites.map { ref in
            RefUpdate(id: nil, runId: runId, repository: mirror.name, remote: secondary.name, ref: ref.ref, oldOid: ref.old?.hex,
                      newOid: ref.new?.hex, action: ref.action, outcome: RefUpdate.pending,
                      message: ref.message.map(redactor.redact), backupRef: ref.backupRef, recordedAt: now)
        }
        do {
            try store.recordPending(rows)
        } catch {
            throw SyncFailure(.internal, "cannot journal the \(rows.count) ref\(rows.count == 1 ? "" : "s") about to be overwritten in \(config.databaseURL.path) (\(error)); nothing was pushed to '\(secondary.name)'")
        }
    }

    /// Settles what an earlier, stopped run left pending on this secondary (StateStore.settlePending).
    func settlePending(_ mirror: Mirror, _ secondary: RemoteSpec, heads: [RemoteHead], runId: Int64?) {
        guard let store else { return }
        do {
            let settled = try store.settlePending(repository: mirror.name, remote: secondary.name, holding: {
                Dictionary(heads.filter { $0.name.hasPrefix("refs/") }.map { ($0.name, $0.id.hex) }, uniquingKeysWith: { a, _ in a })
            }, before: runId)
            if settled > 0 { progress(mirror.name, secondary.name, "settled \(settled) journal row\(settled == 1 ? "" : "s") a stopped run left pending") }
        } catch {
            progress(mirror.name, secondary.name, "could not settle the journal rows a stopped run left pending: \(error)")
        }
    }

    /// The rows a remote's outcome writes; nil for a remote without a verdict (stopped), whose state
    /// row stays as it was and whose refs applied before the stop are journaled here and now.
    func outcome(_ report: RemoteReport, runId: Int64, fingerprint: String?, held: HeldOutcomes? = nil) -> RemoteOutcome? {
        guard let store else { return nil }
        let now = Date()
        // The refs' messages repeat (20,000 refs of a first seed say the same): each is redacted once.
        var redacted: [String: String] = [:]
        func scrubbed(_ message: String) -> String {
            if let known = redacted[message] { return known }
            let text = redactor.redact(message)
            redacted[message] = text
            return text
        }
        guard let condition = report.result.condition else {
            let applied = report.refs.filter { $0.outcome == .applied }.map { ref in
                RefUpdate(id: nil, runId: runId, repository: report.repository, remote: report.remote, ref: ref.ref,
                          oldOid: ref.old?.hex, newOid: ref.new?.hex, action: ref.action, outcome: ref.outcome,
                          message: ref.message.map(scrubbed), backupRef: ref.backupRef, recordedAt: now)
            }
            if !applied.isEmpty {
                do {
                    try store.recordJournal(applied, replacingPending: (runId, report.remote))
                } catch {
                    held?.journalFailed("the \(applied.count) ref\(applied.count == 1 ? "" : "s") \(report.remote) took before the stop: \(error)")
                }
            }
            return nil
        }
        let row = RemoteState(repository: report.repository, remote: report.remote, role: report.role, url: redactor.redact(report.url),
                              state: condition, lastAttempt: now, lastSuccess: report.failure == nil ? now : nil,
                              lastErrorClass: report.failure?.errorClass, lastError: report.failure.map { redactor.redact($0.message) },
                              refsFingerprint: fingerprint, lastRunId: runId, head: report.head)
        let refs = report.refs.map { ref in
            RefUpdate(id: nil, runId: runId, repository: report.repository, remote: report.remote, ref: ref.ref,
                      oldOid: ref.old?.hex, newOid: ref.new?.hex, action: ref.action, outcome: ref.outcome,
                      message: ref.message.map(scrubbed), backupRef: ref.backupRef, recordedAt: now)
        }
        return RemoteOutcome(state: row, refs: refs)
    }
}

/// Outcomes that can wait for the end of their repository's run, to be written in its one closing
/// transaction (`StateStore.finishRun`): those with no journal rows (a remote found in step, or one
/// that failed before changing anything), while the run is younger than `patience`. A run that
/// lasts longer writes each outcome as it comes, with any still held, so that `status` shows them
/// while a slow push goes on; a journal row (a ref applied, rejected or kept) is never held back.
final class HeldOutcomes: Sendable {
    static let patience: TimeInterval = 1
    private let since: Date
    private struct Held {
        var outcomes: [RemoteOutcome] = []
        var failures: [String] = []
    }
    private let held = Mutex(Held())

    init(since: Date) { self.since = since }

    /// A write to the state database this run could not make (it is reported, and the run is out of step).
    func journalFailed(_ what: String) { held.withLock { $0.failures.append(what) } }
    var journalFailures: [String] { held.withLock { $0.failures } }

    /// Holds the outcome and returns true, or returns false when it is to be written now.
    func hold(_ outcome: RemoteOutcome) -> Bool {
        guard outcome.refs.isEmpty, Date().timeIntervalSince(since) < Self.patience else { return false }
        held.withLock { $0.outcomes.append(outcome) }
        return true
    }

    /// The outcomes held, which are no longer.
    func take() -> [RemoteOutcome] {
        held.withLock { held in
            defer { held.outcomes = [] }
            return held.outcomes
        }
    }
}

/// Writes what a remote is doing to the state database, for `status`: once its work has gone on for
/// `delay`, then its latest word at most every `interval`, and removes it when the remote is done.
/// A listing done in a tenth of a second writes nothing (it used to write a row and delete it: two of
/// the few transactions a no-op pass costs per remote); a remote that goes silent, as a hung server
/// does, still shows, since a timer writes what was last said. A write that fails is said once, by
/// `unrecorded` (`status` then shows older progress; the run itself is unaffected).
final class ProgressRecorder: Sendable {
    let store: StateStore
    let delay: TimeInterval
    let interval: TimeInterval
    private let unrecorded: @Sendable (String) -> Void
    private struct Entry {
        var started: Date
        var written: Date?
        var pending: SyncProgress?

        func due(at now: Date, delay: TimeInterval, interval: TimeInterval) -> Bool {
            written.map { now.timeIntervalSince($0) >= interval } ?? (now.timeIntervalSince(started) >= delay)
        }
    }
    private struct Board {
        /// By "repository/remote".
        var entries: [String: Entry] = [:]
        var failed = false
    }
    /// Held while writing, so that a remote's row is never written after the remote is done and its row removed.
    private let board = Mutex(Board())
    private let ticker = Mutex<Ticker?>(nil)

    init(store: StateStore, delay: TimeInterval = 1, interval: TimeInterval = 2, unrecorded: @escaping @Sendable (String) -> Void = { _ in }) {
        self.store = store
        self.delay = delay
        self.interval = interval
        self.unrecorded = unrecorded
        let ticker = Ticker(every: delay / 2) { [weak self] in self?.flush() }
        self.ticker.withLock { $0 = ticker }
    }

    deinit { ticker.withLock { $0?.stop() } }

    func note(_ note: ProgressNote, now: Date = Date()) {
        let (repository, remote, message) = (note.repository, note.remote, note.message)
        let key = "\(repository)/\(remote)"
        board.withLock { board in
            if note.finished {
                if board.entries.removeValue(forKey: key)?.written != nil {
                    write(&board) { try store.clearProgress(repository: repository, remote: remote) }
                }
                return
            }
            var entry = board.entries[key] ?? Entry(started: now)
            let progress = SyncProgress(repository: repository, remote: remote, phase: message, startedAt: entry.started, updatedAt: now)
            if entry.due(at: now, delay: delay, interval: interval) {
                write(&board) { try store.recordProgress(progress) }
                entry.written = now
                entry.pending = nil
            } else {
                entry.pending = progress
            }
            board.entries[key] = entry
        }
    }

    /// Writes the words that have waited long enough.
    func flush(now: Date = Date()) {
        board.withLock { board in
            for (key, entry) in board.entries {
                guard var progress = entry.pending, entry.due(at: now, delay: delay, interval: interval) else { continue }
                progress.updatedAt = now
                write(&board) { try store.recordProgress(progress) }
                board.entries[key]?.written = now
                board.entries[key]?.pending = nil
            }
        }
    }

    private func write(_ board: inout Board, _ body: () throws -> Void) {
        do {
            try body()
        } catch {
            guard !board.failed else { return }
            board.failed = true
            unrecorded("could not record progress in the state database (status shows older progress until it can): \(error)")
        }
    }
}
