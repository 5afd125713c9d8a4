import ArgumentParser
import Foundation
import MirrorCore

struct SyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Mirror the primaries to their secondaries once.",
        discussion: "Exits 0 only when every selected secondary holds exactly the planned refs."
    )

    @OptionGroup var options: ConfigOptions

    @Argument(help: "Repositories to sync (default: all).")
    var repositories: [String] = []

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Option(help: ArgumentHelp("How long to wait for another gitmirror's lock on a repository.", valueName: "duration"))
    var lockWait: String = "15m"

    @OptionGroup var parallel: ParallelOptions

    func validate() throws {
        guard parseDuration(lockWait) != nil else { throw ValidationError("--lock-wait must be a duration such as 30s or 15m") }
    }

    func run() throws {
        let config = try options.load()
        let mirrors = try options.select(repositories, from: config)
        var syncOptions = RepositorySync.Options()
        syncOptions.lockWait = parseDuration(lockWait) ?? 900
        let (reports, interrupted) = try Engine.run(config: config, mirrors: mirrors, options: syncOptions, jobs: parallel.jobs(config), heartbeat: parallel.heartbeat)
        if json {
            try Terminal.printJSON(reports)
        } else {
            print(ReportTable.render(reports))
        }
        if interrupted { throw ExitStatus.interrupted }
        if !reports.allSatisfy(\.inStep) { throw ExitStatus.outOfStep }
    }
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Fetch the primaries and print what a sync would do to every ref, pushing nothing."
    )

    @OptionGroup var options: ConfigOptions

    @Argument(help: "Repositories to plan (default: all).")
    var repositories: [String] = []

    @Flag(help: "Print the plan as JSON.")
    var json = false

    @OptionGroup var parallel: ParallelOptions

    func run() throws {
        let config = try options.load()
        let mirrors = try options.select(repositories, from: config)
        var syncOptions = RepositorySync.Options()
        syncOptions.planOnly = true
        let (reports, interrupted) = try Engine.run(config: config, mirrors: mirrors, options: syncOptions, jobs: parallel.jobs(config), heartbeat: parallel.heartbeat)
        if json {
            try Terminal.printJSON(reports)
        } else {
            print(ReportTable.renderPlan(reports))
        }
        if interrupted { throw ExitStatus.interrupted }
        if reports.contains(where: { $0.primary.failure != nil || $0.secondaries.contains { $0.failure != nil } }) {
            throw ExitStatus.outOfStep
        }
    }
}

/// How many repositories one `sync` or `plan` works on at once.
struct ParallelOptions: ParsableArguments {
    @Option(name: [.short, .long], help: ArgumentHelp(
        "How many repositories to work on at once.",
        discussion: "Defaults to daemon.max_parallel_repositories (4). Connections to one host stay within daemon.max_connections_per_host.",
        valueName: "n"))
    var jobs: Int?

    @Option(help: ArgumentHelp(
        "When output is not a terminal (cron, CI, journald), print a line per remote still working this often.",
        valueName: "duration"))
    var progressEvery: String = "10s"

    var heartbeat: TimeInterval { parseDuration(progressEvery) ?? 10 }

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        guard let every = parseDuration(progressEvery), every >= 1 else {
            throw ValidationError("--progress-every must be a duration of at least 1s, such as 10s or 1m")
        }
    }

    func jobs(_ config: Config) -> Int { jobs ?? config.daemon.maxParallelRepositories }
}

/// Builds the supervisor's parts from a configuration and runs the repositories,
/// `jobs` at a time; the reports come back in the order the repositories were given.
enum Engine {
    /// `interrupted`: a Ctrl-C or SIGTERM stopped the work (see `Interruption`).
    static func run(config: Config, mirrors: [Mirror], options: RepositorySync.Options, jobs: Int = 1, heartbeat: TimeInterval = 10) throws
        -> (reports: [RepositoryReport], interrupted: Bool) {
        let store: StateStore
        do {
            store = try StateStore(path: config.databaseURL.path)
        } catch {
            Terminal.error("error: cannot open the state database \(config.databaseURL.path): \(error)")
            throw ExitStatus.outOfStep
        }
        // A sync that cannot record what it did must not run (plan records nothing).
        if let newer = store.newerSchema, !options.planOnly {
            Terminal.error("error: \(newer)")
            throw ExitStatus.outOfStep
        }
        try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: config.stateDirectory.path)
        let redactor = Redactor()
        let board = ProgressBoard()
        let registry = WorkerRegistry()
        Interruption.stopWorkers(of: registry)
        let sync = RepositorySync(
            config: config, store: store, supervisor: WorkerSupervisor(executable: selfExecutable(), registry: registry),
            credentials: CredentialResolver(redactor: redactor), options: options,
            hostLimiter: HostLimiter(limit: config.daemon.maxConnectionsPerHost),
            progress: { repository, remote, message in
                board.update(repository: repository, remote: remote, message: redactor.redact(message))
                Terminal.draw(board.active)
            })
        let stopHeartbeat = board.everyInterval(heartbeat) { Terminal.heartbeat($0) }
        let reports = Self.inParallel(mirrors, jobs: jobs) { sync.run($0) }
        stopHeartbeat()
        Terminal.clearProgress()
        if !options.planOnly && !registry.isStopping {
            do {
                try store.prune(config.retention)
            } catch {
                Terminal.error("warning: could not prune old runs from the state database (retention): \(error)")
            }
        }
        return (reports, registry.isStopping)
    }

    /// Runs `body` on every item, at most `jobs` at once, each on a thread of its own
    /// (the work is network-bound and blocking); results keep the items' order.
    static func inParallel<Item: Sendable, Result: Sendable>(_ items: [Item], jobs: Int, _ body: @escaping @Sendable (Item) -> Result) -> [Result] {
        let results = ResultSlots<Result>(count: items.count)
        let slots = DispatchSemaphore(value: max(1, jobs))
        let group = DispatchGroup()
        for (index, item) in items.enumerated() {
            slots.wait()
            group.enter()
            Thread.detachNewThread {
                results.set(index, body(item))
                slots.signal()
                group.leave()
            }
        }
        group.wait()
        return results.values
    }

    static func selfExecutable() -> URL { ChildProcess.ownExecutable }
}

/// Ctrl-C or SIGTERM during `sync` or `plan`: the running workers are stopped, every
/// repository still to start is skipped, the runs are recorded as interrupted and the
/// locks released; the command prints what it has and exits 130. A second signal quits at once.
enum Interruption {
    /// Kept for the life of the process: a released source stops handling its signal.
    nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []

    static func stopWorkers(of registry: WorkerRegistry) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if registry.isStopping { _exit(130) }
                Terminal.clearProgress()
                Terminal.error("interrupted: stopping the running network operations and recording the runs as interrupted (again to quit at once)")
                registry.stopAll()
            }
            source.resume()
            sources.append(source)
        }
    }
}

/// Results filled in by parallel threads, read once all are done.
final class ResultSlots<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Value?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: Value) { lock.withLock { slots[index] = value } }

    var values: [Value] { lock.withLock { slots.compactMap { $0 } } }
}
