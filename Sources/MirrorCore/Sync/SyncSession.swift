import Foundation

/// The composition root of `gitmirror sync` and `gitmirror plan` (the daemon's is `makeDaemon`):
/// builds the state store, workers, credentials and host limits from a configuration, runs the
/// repositories (at most `jobs` of them fetching or pushing at once), and prunes the history afterwards.
/// Output is the caller's.
public struct SyncSession: Sendable {
    /// How the caller shows work in progress.
    public struct Display: Sendable {
        /// The remotes still working, after every progress line.
        public var progress: @Sendable ([ProgressBoard.Entry]) -> Void
        /// The same every `heartbeat` seconds (for logs that are not a terminal).
        public var heartbeat: @Sendable ([ProgressBoard.Entry]) -> Void
        /// The work is over: clear what `progress` drew.
        public var finished: @Sendable () -> Void
        /// Something went wrong that does not change the outcome (retention could not prune).
        public var warning: @Sendable (String) -> Void

        public init(progress: @escaping @Sendable ([ProgressBoard.Entry]) -> Void, heartbeat: @escaping @Sendable ([ProgressBoard.Entry]) -> Void,
                    finished: @escaping @Sendable () -> Void, warning: @escaping @Sendable (String) -> Void) {
            self.progress = progress
            self.heartbeat = heartbeat
            self.finished = finished
            self.warning = warning
        }
    }

    /// Why a session cannot start.
    public enum Problem: Error, CustomStringConvertible {
        case stateUnavailable(path: String, reason: String)
        case newerSchema(StateError)

        public var description: String {
            switch self {
            case let .stateUnavailable(path, reason): return "cannot open the state database \(path): \(reason)"
            case .newerSchema(let error): return "\(error)"
            }
        }
    }

    /// Stops the running workers: the caller's signal handlers (Ctrl-C, SIGTERM) call `registry.stopAll()`.
    public let registry = WorkerRegistry()

    public init() {}

    /// The reports come back in the order of `mirrors`; `interrupted` when the registry was stopped.
    public func run(config: Config, mirrors: [Mirror], options: RepositorySync.Options, jobs: Int = 1, heartbeat: TimeInterval = 10,
                    display: Display) throws(Problem) -> (reports: [RepositoryReport], interrupted: Bool) {
        let workers = Workers(executable: ChildProcess.ownExecutable, registry: registry, hostLimiter: HostLimiter(config.daemon, transferring: jobs))
        if !mirrors.isEmpty {
            workers.prestartListings()
            // And one for a fetch: when the listing shows a change, its worker is up already.
            if !options.planOnly { workers.prestart(1, trust: "") }
        }
        let store: StateStore
        do {
            store = try StateStore(path: config.databaseURL.path)
        } catch {
            throw .stateUnavailable(path: config.databaseURL.path, reason: "\(error)")
        }
        // A sync that cannot record what it did must not run (plan records nothing).
        if let newer = store.newerSchema, !options.planOnly { throw .newerSchema(newer) }
        try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: config.stateDirectory.path)
        let redactor = Redactor()
        let board = ProgressBoard()
        var options = options
        options.prestartWorkers = true
        // A run of a few repositories lists each primary on its fetch's connection; a pass over many
        // lists them in shared listing workers, and fetches only where something moved.
        options.listOnFetchConnection = mirrors.count <= 4
        let sync = RepositorySync(
            config: config, store: store,
            workers: workers,
            credentials: CredentialResolver(environment: ProcessInfo.processInfo.environment, redactor: redactor), options: options,
            warning: display.warning,
            progress: { note in
                var note = note
                note.message = redactor.redact(note.message)
                board.update(note)
                display.progress(board.active)
            })
        let started = Date()
        let stopHeartbeat = board.everyInterval(heartbeat) { display.heartbeat($0) }
        // As many repositories at once as there may be connections: most only list, and wait on far-away
        // remotes; the host limiter holds fetches and pushes to `jobs` repositories.
        let reports = concurrently(mirrors.count, limit: max(jobs, config.daemon.maxConnections)) { sync.run(mirrors[$0]) }
        stopHeartbeat()
        display.finished()
        if !options.planOnly && !registry.isStopping {
            // A sync of the whole fleet is a full pass (`status` shows how long the last one took).
            if Set(mirrors.map(\.name)) == Set(config.repositories.map(\.name)) && !mirrors.isEmpty {
                do {
                    try store.recordPass(PassRecord(source: "sync", startedAt: started, finishedAt: Date(), repositories: mirrors.count))
                } catch {
                    display.warning("could not record the full pass in the state database (status shows the previous one): \(error)")
                }
            }
            do {
                try store.prune(config.retention)
            } catch {
                display.warning("could not prune old runs from the state database (retention): \(error)")
            }
            FileRetention.prune(stateDirectory: config.stateDirectory, retention: config.retention)
        }
        return (reports, registry.isStopping)
    }
}
