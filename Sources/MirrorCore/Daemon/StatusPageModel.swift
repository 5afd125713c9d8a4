import Foundation
import Synchronization

/// A remote's state as the status page shows it, worst first.
enum PageState: String, CaseIterable, Sendable, Encodable {
    case failing, diverged, behind, syncing
    case neverSynced = "never_synced"
    case inStep = "in_step"

    var label: String {
        switch self {
        case .failing: "failing"
        case .diverged: "diverged"
        case .behind: "behind"
        case .syncing: "syncing"
        case .neverSynced: "never synced"
        case .inStep: "in step"
        }
    }

    var rank: Int { Self.allCases.firstIndex(of: self)! }
}

/// One remote of one repository, as the page and `/api/v1` give it: no secret (the URL is the
/// configuration's, shown without any password), messages as recorded (already redacted).
struct PageRemote: Encodable, Sendable {
    var name: String
    var role: String
    var url: String
    var state: PageState
    /// Since when it has been out of step (its last success, or the repository's first run).
    var outOfStepSince: Date?
    var lastSuccess: Date?
    var lastAttempt: Date?
    var errorClass: String?
    var error: String?
    var advice: String?
    var progress: String?
    var head: String?
    var lastRunId: Int64?

    enum CodingKeys: String, CodingKey {
        case name, role, url, state, lastSuccess = "last_success", lastAttempt = "last_attempt", outOfStepSince = "out_of_step_since"
        case errorClass = "error_class", error, advice, progress, head
    }

    var errorLine: String? { error.map { String($0.split(separator: "\n", omittingEmptySubsequences: true).first ?? "") } }
}

struct PageRepository: Encodable, Sendable {
    var name: String
    var state: PageState
    var outOfStepSince: Date?
    var remotes: [PageRemote]

    enum CodingKeys: String, CodingKey { case name, state, outOfStepSince = "out_of_step_since", remotes }
}

/// Everything the overview shows, computed once per change of the state database (`pageVersion`) and
/// kept: a request filters and pages it (10,000 repositories are not read again per request).
struct PageSnapshot: Sendable {
    var version: String
    var generatedAt: Date
    var repositories: [PageRepository]
    var totals: [PageState: Int]
    var lastPass: PassRecord?
    /// The daemon's scheduling interval: a last pass older than two of them makes the page say it is stale.
    var interval: TimeInterval

    var isStale: Bool {
        guard let lastPass else { return false }
        return generatedAt.timeIntervalSince(lastPass.finishedAt) > 2 * interval + 60
    }

    static func make(config: Config, store: StateStore, version: String, now: Date = Date()) throws -> PageSnapshot {
        var known: [String: RemoteState] = [:]
        for state in try store.remoteStates() { known["\(state.repository)\u{0}\(state.remote)"] = state }
        var working: [String: SyncProgress] = [:]
        for entry in try store.progress() where kill(entry.pid, 0) == 0 { working["\(entry.repository)\u{0}\(entry.remote)"] = entry }
        var repositories: [PageRepository] = []
        for mirror in config.repositories {
            let primary = known["\(mirror.name)\u{0}primary"]
            var remotes: [PageRemote] = []
            for remote in [mirror.primary] + mirror.secondaries {
                let row = known["\(mirror.name)\u{0}\(remote.name)"]
                let running = working["\(mirror.name)\u{0}\(remote.name)"]
                var state: PageState
                switch row?.state {
                case nil: state = .neverSynced
                case .failing?: state = .failing
                case .diverged?: state = .diverged
                case .ok?:
                    // In step at its last success, but the primary has been fetched since without reaching it.
                    if remote.role == .secondary, let mine = row?.lastSuccess, let theirs = primary?.lastSuccess, theirs > mine.addingTimeInterval(1) {
                        state = .behind
                    } else {
                        state = .inStep
                    }
                }
                if running != nil { state = .syncing }
                let failure = row?.lastErrorClass.map { SyncFailure($0, row?.lastError ?? "") }
                remotes.append(PageRemote(
                    name: remote.name, role: remote.role.rawValue, url: remote.url.display, state: state,
                    outOfStepSince: [.failing, .diverged, .behind].contains(state) ? (row?.lastSuccess ?? row?.lastAttempt) : nil,
                    lastSuccess: row?.lastSuccess, lastAttempt: row?.lastAttempt, errorClass: row?.lastErrorClass?.rawValue,
                    error: row?.lastError, advice: failure.map { Preflight.advice(for: $0, remote: remote) },
                    progress: running.map { "\($0.phase) (for \(formatDuration(now.timeIntervalSince($0.startedAt))))" },
                    head: row?.head, lastRunId: row?.lastRunId))
            }
            let worst = remotes.map(\.state).min { $0.rank < $1.rank } ?? .neverSynced
            repositories.append(PageRepository(name: mirror.name, state: worst,
                                               outOfStepSince: remotes.compactMap(\.outOfStepSince).min(), remotes: remotes))
        }
        // Worst first; among equals, out of step the longest first, then by name.
        repositories.sort { a, b in
            if a.state.rank != b.state.rank { return a.state.rank < b.state.rank }
            if a.outOfStepSince != b.outOfStepSince { return (a.outOfStepSince ?? .distantFuture) < (b.outOfStepSince ?? .distantFuture) }
            return a.name < b.name
        }
        var totals: [PageState: Int] = [:]
        for repository in repositories { totals[repository.state, default: 0] += 1 }
        return PageSnapshot(version: version, generatedAt: now, repositories: repositories, totals: totals,
                            lastPass: try? store.lastPass(), interval: config.daemon.interval)
    }

    /// The repositories a filter (a state) and a search (part of the name, any case) leave, one page of them.
    func select(state: PageState?, query: String, page: Int, perPage: Int) -> (rows: ArraySlice<PageRepository>, matched: Int, pages: Int) {
        let needle = query.lowercased()
        let matched = repositories.filter { ($0.state == state || state == nil) && (needle.isEmpty || $0.name.lowercased().contains(needle)) }
        let pages = max(1, (matched.count + perPage - 1) / perPage)
        let page = min(max(1, page), pages)
        let start = (page - 1) * perPage
        return (matched[start..<min(matched.count, start + perPage)], matched.count, pages)
    }
}

/// The snapshot of the current version. When the state database changed, the snapshot kept is still
/// served while the next one is made on a thread of its own (10,000 repositories take a few hundred
/// milliseconds): no request waits for it but the very first. The page's script sees the new version
/// at its next look and fetches the page again.
final class PageSnapshots: Sendable {
    private struct State {
        var current: PageSnapshot?
        var making = false
    }
    private let state = Mutex(State())

    func snapshot(config: Config, store: StateStore) throws -> PageSnapshot {
        let seen = try store.pageVersion() + "/\(config.repositories.count)"
        let version = Array(SHA256.hash(Array(seen.utf8)).prefix(8)).hex
        let (kept, start) = state.withLock { state -> (PageSnapshot?, Bool) in
            guard let current = state.current else { return (nil, false) }
            // Durations ("out of step for …") and staleness move with the clock: made again every 30 s.
            let due = current.version != version || Date().timeIntervalSince(current.generatedAt) >= 30
            let start = due && !state.making
            if start { state.making = true }
            return (current, start)
        }
        if let kept {
            if start {
                BlockingThreads.shared.run { [self] in
                    let made = try? PageSnapshot.make(config: config, store: store, version: version)
                    state.withLock { state in
                        if let made { state.current = made }
                        state.making = false
                    }
                }
            }
            return kept
        }
        let made = try PageSnapshot.make(config: config, store: store, version: version)
        state.withLock { $0.current = made }
        return made
    }
}
