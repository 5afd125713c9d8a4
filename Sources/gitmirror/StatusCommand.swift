import ArgumentParser
import Foundation
import MirrorCore

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each remote's last known state, read from SQLite."
    )

    @OptionGroup var options: ConfigOptions

    @Flag(help: "Print the status as a JSON array.")
    var json = false

    struct Row: Encodable {
        var repository: String
        var remote: String
        var role: String
        var url: String
        var state: String
        var lastAttempt: Date?
        var lastSuccess: Date?
        var lastErrorClass: String?
        var lastError: String?
        /// From a running daemon: when it syncs the repository next, and why then.
        var nextRun: Date?
        var schedule: String?
        /// From a sync running now: what it is doing on this remote.
        var progress: String?
        /// The branch the remote's HEAD pointed at when last seen.
        var head: String?
        /// A secondary whose HEAD is not the primary's.
        var headDiffers = false
        /// A primary row whose repository's run is overdue (a running daemon's schedule is behind).
        var overdue = false
        /// A primary row's cache: its packs and their bytes now (read from its folder).
        var cache: CacheFigures?

        enum CodingKeys: String, CodingKey {
            case repository, remote, role, url, state
            case lastAttempt = "last_attempt", lastSuccess = "last_success"
            case lastErrorClass = "last_error_class", lastError = "last_error"
            case nextRun = "next_run", schedule, progress, head, headDiffers = "head_differs", overdue
            case cachePacks = "cache_packs", cacheBytes = "cache_bytes"
        }

        /// Every field, null where unknown (a reader sees each key on every row); `head_differs` only on
        /// secondaries and `overdue` only on primaries, where they mean something.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            var fields: [(CodingKeys, any Encodable)] = [
                (.repository, repository), (.remote, remote), (.role, role), (.url, url), (.state, state),
                (.lastAttempt, lastAttempt), (.lastSuccess, lastSuccess), (.lastErrorClass, lastErrorClass),
                (.lastError, lastError), (.nextRun, nextRun), (.schedule, schedule), (.progress, progress), (.head, head),
            ]
            if role == "secondary" { fields.append((.headDiffers, headDiffers)) }
            if role == "primary" { fields += [(.overdue, overdue), (.cachePacks, cache?.packs), (.cacheBytes, cache?.bytes)] }
            for (key, value) in fields { try container.encode(value, forKey: key) }
        }
    }

    func run() throws {
        let written = try options.load()
        // Discovered repositories as last listed (no API is asked), and those gone from their sources.
        let discovery = Discoverer.lastListings(written)
        let config = discovery?.config ?? written
        var known: [String: RemoteState] = [:]
        var schedule: [String: ScheduleEntry] = [:]
        var working: [String: SyncProgress] = [:]
        var lastPass: PassRecord?
        do {
            if let store = try StateStore.reading(config) {
                for state in try store.remoteStates() { known["\(state.repository)\u{0}\(state.remote)"] = state }
                // Only a daemon that is still running speaks for the schedule.
                for entry in (try? store.schedule()) ?? [] where kill(entry.pid, 0) == 0 { schedule[entry.repository] = entry }
                // Only a sync whose process still runs is in progress.
                for entry in (try? store.progress()) ?? [] where kill(entry.pid, 0) == 0 { working["\(entry.repository)\u{0}\(entry.remote)"] = entry }
                lastPass = try? store.lastPass()
            }
        } catch {
            Terminal.error("error: cannot read the state database \(config.databaseURL.path): \(error)")
            throw ExitStatus.outOfStep
        }
        var rows: [Row] = []
        for mirror in config.repositories {
            let primaryHead = known["\(mirror.name)\u{0}primary"]?.head
            for remote in [mirror.primary] + mirror.secondaries {
                let state = known["\(mirror.name)\u{0}\(remote.name)"]
                let now = working["\(mirror.name)\u{0}\(remote.name)"]
                rows.append(Row(repository: mirror.name, remote: remote.name, role: remote.role.rawValue, url: remote.url.display,
                                state: state?.state.rawValue ?? "never_synced", lastAttempt: state?.lastAttempt, lastSuccess: state?.lastSuccess,
                                lastErrorClass: state?.lastErrorClass?.rawValue, lastError: state?.lastError,
                                nextRun: schedule[mirror.name]?.nextRun,
                                schedule: schedule[mirror.name].map { [$0.state, $0.note].compactMap { $0 }.joined(separator: "; ") },
                                progress: now.map { "\($0.phase) (for \(formatDuration(Date().timeIntervalSince($0.startedAt))))" },
                                head: state?.head,
                                headDiffers: remote.role == .secondary && state != nil && primaryHead != nil && state?.head != primaryHead,
                                overdue: remote.role == .primary && schedule[mirror.name].map { entry in
                                    entry.state == "idle" && entry.nextRun.map {
                                        Scheduler.isOverdue(nextRun: $0, interval: mirror.interval ?? config.daemon.interval, now: Date())
                                    } == true
                                } == true,
                                cache: remote.role == .primary
                                    ? CacheFigures(stateDirectory: config.stateDirectory, repository: mirror.name) : nil))
            }
        }
        // Like sync: a script can tell from the exit status alone whether everything is in step.
        let outOfStep = rows.contains { $0.state == "failing" || $0.state == "diverged" }
        if json {
            try Terminal.printJSON(rows)
            if outOfStep { throw ExitStatus.outOfStep }
            return
        }
        let daemonRunning = !schedule.isEmpty
        let table = rows.map { row in
            [row.repository, row.remote, row.role, row.progress == nil ? row.state : "syncing", Terminal.time(row.lastSuccess), Terminal.time(row.lastAttempt)]
                + (daemonRunning ? [row.role == "primary" ? (row.nextRun.map(Terminal.time) ?? row.schedule ?? "-") : ""] : [])
                + [row.lastErrorClass.map { "\($0): \(row.lastError ?? "")" } ?? ""]
        }
        let header = ["REPOSITORY", "REMOTE", "ROLE", "STATE", "LAST SUCCESS", "LAST ATTEMPT"] + (daemonRunning ? ["NEXT RUN"] : []) + ["LAST ERROR"]
        print(Terminal.table(header, table, cutLastColumn: 160))
        let notes = rows.filter { $0.role == "primary" }.compactMap { row in row.schedule.flatMap { $0.contains(";") ? "\(row.repository): \($0)" : nil } }
        if !notes.isEmpty { print("\n" + notes.joined(separator: "\n")) }
        let heads = rows.filter(\.headDiffers).map { row in
            let primary = rows.first { $0.repository == row.repository && $0.role == "primary" }?.head ?? "?"
            return "\(row.repository)/\(row.remote): HEAD points at \(row.head.map(Self.branch) ?? "no branch"), the primary's at \(Self.branch(primary))"
        }
        if !heads.isEmpty { print("\ndefault branch differs:\n" + heads.map { "  " + $0 }.joined(separator: "\n")) }
        if let discovery, !discovery.gone.isEmpty {
            print("\nno longer listed by their source (unscheduled; their cache and history are kept, nothing was deleted):\n"
                  + discovery.gone.map { "  \($0.source) \($0.path) since \(Terminal.time($0.since))" }.joined(separator: "\n"))
        }
        let running = rows.compactMap { row in row.progress.map { "\(row.repository)/\(row.remote): \($0)" } }
        if !running.isEmpty { print("\nsyncing now:\n" + running.map { "  " + $0 }.joined(separator: "\n")) }
        if let lastPass {
            print("\nlast full pass: \(lastPass.repositories) repositor\(lastPass.repositories == 1 ? "y" : "ies") in \(formatDuration(lastPass.duration))"
                  + " (\(lastPass.source), ended \(Terminal.time(lastPass.finishedAt)))")
        }
        if daemonRunning {
            let overdue = rows.filter(\.overdue).map(\.repository)
            print("\(lastPass == nil ? "\n" : "")overdue: \(overdue.isEmpty ? "none" : "\(overdue.count) of \(config.repositories.count) (\(overdue.prefix(5).joined(separator: ", "))\(overdue.count > 5 ? ", …" : ""))")"
                  + (overdue.isEmpty ? "" : " — the daemon cannot start them as fast as they fall due: raise daemon.max_connections, or the interval"))
        }
        if outOfStep { throw ExitStatus.outOfStep }
    }

    static func branch(_ ref: String) -> String { ref.hasPrefix("refs/heads/") ? String(ref.dropFirst("refs/heads/".count)) : ref }
}
