import Foundation
import Git

/// What happened to one ref of one remote.
public struct RefOutcome: Codable, Sendable, Equatable {
    public typealias Outcome = RefResult

    public var ref: String
    public var action: RefAction
    public var old: ObjectID?
    public var new: ObjectID?
    public var outcome: Outcome
    public var message: String?
    public var backupRef: String?
    /// The cache's ref a `beside` ref is pushed from (the primary's rewritten branch).
    public var from: String? = nil
}

/// One remote's part in one run.
public struct RemoteReport: Codable, Sendable {
    public enum Result: String, Codable, Sendable {
        /// In step, and something was pushed.
        case ok
        /// In step, nothing needed pushing.
        case upToDate = "up_to_date"
        /// Planned only (`gitmirror plan`).
        case planned
        /// Some refs kept because they diverged.
        case diverged
        case failed
        /// gitmirror was stopped during this remote's work: its state is left as it was.
        case interrupted
    }

    public var repository: String
    public var remote: String
    public var role: Role
    public var url: String
    public var result: Result
    public var failure: SyncFailure?
    public var refs: [RefOutcome] = []
    public var skipped = 0
    public var upToDate = 0
    public var duration: TimeInterval = 0
    public var bytes = 0
    /// The branch HEAD points at after the run (`refs/heads/main`), when the remote advertised one.
    public var head: String?
    /// What was done about a secondary's HEAD, or why it differs from the primary's.
    public var headNote: String?
    /// LFS objects uploaded before the refs.
    public var lfsObjects = 0
    /// Set when the run listed nothing because the primary's forge said nothing changed (`change_check: api`).
    public var unchanged: String?

    public var created: Int { count(.create) }
    public var updated: Int { count(.fastForward) + count(.force) }
    public var deleted: Int { count(.delete) }
    public var kept: Int { refs.filter { $0.outcome == .kept }.count }

    private func count(_ action: RefAction) -> Int {
        refs.filter { $0.action == action && ($0.outcome == .applied || $0.outcome == .planned) }.count
    }

    /// Whether the remote holds exactly what the plan meant it to.
    public var inStep: Bool { result == .ok || result == .upToDate || result == .planned }
}

public struct RepositoryReport: Codable, Sendable {
    public var repository: String
    public var runId: Int64?
    public var primary: RemoteReport
    public var secondaries: [RemoteReport]
    public var duration: TimeInterval
    /// What the run could not write to the state database (an outcome, a journal row, the run's end):
    /// the refs moved, but history does not say so. Such a run is never reported in step.
    public var journalFailures: [String] = []
    /// The cache's packs and their size when the run ended (nil: it has none yet).
    public var cache: CacheFigures?

    public init(repository: String, runId: Int64?, primary: RemoteReport, secondaries: [RemoteReport], duration: TimeInterval) {
        self.repository = repository
        self.runId = runId
        self.primary = primary
        self.secondaries = secondaries
        self.duration = duration
    }

    public var inStep: Bool { primary.failure == nil && secondaries.allSatisfy(\.inStep) && journalFailures.isEmpty }
}

extension RemoteReport.Result {
    /// The result of a remote whose work ended in `failure`: interrupted when gitmirror itself was
    /// stopped (no verdict on the remote), failed otherwise.
    public static func ending(in failure: SyncFailure) -> Self {
        failure.errorClass == .interrupted ? .interrupted : .failed
    }

    /// The one mapping from a run's result to the remote's condition, used by the state store, the
    /// notifier and the metrics alike; nil when the run says nothing about the remote (interrupted).
    public var condition: RemoteCondition? {
        switch self {
        case .ok, .upToDate, .planned: return .ok
        case .diverged: return .diverged
        case .failed: return .failing
        case .interrupted: return nil
        }
    }
}

extension RepositoryReport {
    /// gitmirror was stopped during some remote's work: the run moves no state, alert or metric.
    public var wasInterrupted: Bool { ([primary] + secondaries).contains { $0.result == .interrupted } }
}
