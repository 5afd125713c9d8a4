import Foundation
import Git
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

/// Which repositories one instance of a sharded fleet owns: a stable hash of the name.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// "I/N", or "auto/N" with I from the host name's trailing "-I" (a StatefulSet's ordinal).
    /// An ordinal of N or more is refused: the StatefulSet's `replicas:` and N have drifted apart,
    /// and that replica's repositories would otherwise belong to no one.
    public static func parse(_ text: String, hostName: String) throws(ShardError) -> Shard {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(parts[1]), count >= 1 else {
            throw ShardError("--shard must be I/N with 0 <= I < N (for example 2/5), or auto/N on a host whose name ends in -I (got '\(text)')")
        }
        if parts[0] == "auto" {
            guard let ordinal = hostName.split(separator: "-").last.flatMap({ Int($0) }) else {
                throw ShardError("--shard auto/\(count) takes I from the host name's trailing -I (a StatefulSet pod such as gitmirror-0), but this host is '\(hostName)'; pass --shard I/\(count)")
            }
            guard ordinal < count else {
                throw ShardError("--shard auto/\(count): this host is '\(hostName)', ordinal \(ordinal), but there are only \(count) shards (0–\(count - 1)); the StatefulSet's replicas and N disagree: make them equal (and daemon.peers too)")
            }
            return Shard(index: ordinal, count: count)
        }
        guard let index = Int(parts[0]), (0..<count).contains(index) else {
            throw ShardError("--shard \(text): I must be a number from 0 to \(count - 1)")
        }
        return Shard(index: index, count: count)
    }

    /// The shard that owns `repository`.
    public func owner(of repository: String) -> Int {
        guard count > 1 else { return 0 }
        var hash: UInt64 = 0xcbf29ce484222325
        for byte in repository.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
        return Int(hash % UInt64(count))
    }

    public func owns(_ repository: String) -> Bool { owner(of: repository) == index }

    public var description: String { "\(index)/\(count)" }
}

public struct ShardError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// What the daemon's services share: the current configuration and the secrets it references.
public actor DaemonState {
    /// The repositories this replica owns, with the file's other settings.
    public private(set) var config: Config
    /// Every repository in the file, owned here or not: a hook for any of them is accepted and routed.
    private(set) var fleet: [Mirror]
    public private(set) var hookSecrets: HookSecrets
    let configFile: URL
    let shard: Shard
    let environment: [String: String]

    public struct HookSecrets: Sendable {
        var github: String?
        var gitlab: String?
        var gitea: String?
        var sync: String?
    }

    init(config: Config, configFile: URL, shard: Shard, environment: [String: String], redactor: Redactor) throws {
        try Self.checkPeers(config, shard: shard)
        self.config = Self.owned(config, shard: shard)
        self.fleet = config.repositories
        self.configFile = configFile
        self.shard = shard
        self.environment = environment
        self.hookSecrets = try Self.secrets(config, environment: environment, redactor: redactor)
    }

    static func owned(_ config: Config, shard: Shard) -> Config {
        var owned = config
        owned.repositories = config.repositories.filter { shard.owns($0.name) }
        return owned
    }

    /// daemon.peers lists one URL per shard, or none.
    static func checkPeers(_ config: Config, shard: Shard) throws {
        let peers = config.daemon.peers
        guard !peers.isEmpty, peers.count != shard.count else { return }
        throw SyncFailure(.config, "daemon.peers lists \(peers.count) URL\(peers.count == 1 ? "" : "s") but --shard \(shard) says there are \(shard.count) shard\(shard.count == 1 ? "" : "s"); entry i must be shard i's URL, one per replica")
    }

    static func secrets(_ config: Config, environment: [String: String], redactor: Redactor) throws -> HookSecrets {
        let resolver = CredentialResolver(environment: environment, redactor: redactor)
        func read(_ source: SecretSource?, _ key: String) throws -> String? {
            guard let source else { return nil }
            return try resolver.read(source, for: "daemon.hooks", key: key)
        }
        return HookSecrets(github: try read(config.daemon.githubSecret, "github_secret"), gitlab: try read(config.daemon.gitlabToken, "gitlab_token"),
                           gitea: try read(config.daemon.giteaSecret, "gitea_secret"), sync: try read(config.daemon.syncToken, "sync_token"))
    }

    /// Loads the file again; an invalid one is refused and the running configuration stays.
    func reload(redactor: Redactor) throws -> Config {
        let loaded = try ConfigLoader().load(file: configFile, environment: environment)
        try Self.checkPeers(loaded, shard: shard)
        let secrets = try Self.secrets(loaded, environment: environment, redactor: redactor)
        config = Self.owned(loaded, shard: shard)
        fleet = loaded.repositories
        hookSecrets = secrets
        return config
    }

    /// The shard that owns a repository of the file; nil for a name the file does not have.
    func owner(of name: String) -> Int? {
        fleet.contains { $0.name == name } ? shard.owner(of: name) : nil
    }

    /// The repositories of the whole file whose primary is one of `urls`.
    func repositories(matching urls: [String]) -> [String] { Scheduler.repositories(fleet, matching: urls) }

    var peers: [URL] { config.daemon.peers }
}

/// Builds the daemon: a ServiceGroup of the HTTP server, the SIGHUP reloader and the scheduler.
public func makeDaemon(configFile: URL, listen: String?, shard: Shard, executable: URL, version: String,
                       environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger) async throws -> ServiceGroup {
    Libgit2.initialize()
    let redactor = Redactor()
    let state = try DaemonState(config: try ConfigLoader().load(file: configFile, environment: environment), configFile: configFile,
                                shard: shard, environment: environment, redactor: redactor)
    let loaded = await state.config
    let store = try StateStore(path: loaded.databaseURL.path)
    if let newer = store.newerSchema { throw newer }
    let registry = WorkerRegistry()
    let metrics = DaemonMetrics(version: version)
    metrics.recordConfigLoaded()
    // Secondaries out of step when the daemon starts are behind from then on, not from their next run.
    for row in (try? store.remoteStates()) ?? [] where row.role == "secondary" && loaded.mirror(named: row.repository) != nil {
        guard row.state != "ok" else { metrics.recordBehind(repository: row.repository, remote: row.remote, since: nil); continue }
        metrics.recordBehind(repository: row.repository, remote: row.remote,
                             since: row.lastSuccess ?? (try? store.firstRunStart(repository: row.repository)) ?? row.lastAttempt)
    }
    let notifier = Notifier(known: (try? store.remoteStates()) ?? [], logger: logger)
    notifier.setTargets(try notifyTargets(loaded, environment: environment, redactor: redactor))
    let credentials = CredentialResolver(environment: environment, redactor: redactor)
    let hostLimiter = HostLimiter(limit: loaded.daemon.maxConnectionsPerHost)
    let supervisor = WorkerSupervisor(executable: executable, registry: registry)
    // Long work says how far it is every 10 s, at info level, one line per remote.
    let board = ProgressBoard()
    _ = board.everyInterval(10) { entries in
        for entry in entries {
            logger.info("sync in progress", metadata: ["repository": "\(entry.repository)", "remote": "\(entry.remote)",
                                                       "progress": "\(entry.line)",
                                                       "elapsed": "\(formatDuration(Date().timeIntervalSince(entry.started)))"])
        }
    }

    // Runs a stopped process left `running` (a crash, a kill -9) are recorded as interrupted, once the
    // repository's lock shows that nobody runs them; interrupted repositories then run first.
    for repository in (try? store.repositoriesWithUnfinishedRuns()) ?? [] {
        let lockPath = loaded.cacheDirectory.appendingPathComponent("\(repository).lock").path
        guard case .acquired(let lock)? = try? RepositoryLock.acquire(path: lockPath, wait: 0) else { continue }
        defer { lock.release() }
        if (try? store.markUnfinishedRunsInterrupted(repository: repository)) != nil {
            logger.info("a run left running by a stopped process is recorded as interrupted", metadata: ["repository": "\(repository)"])
        }
    }
    let interrupted = (try? store.repositoriesLastInterrupted()) ?? []

    let scheduler = Scheduler(
        config: loaded, logger: logger, startNow: interrupted,
        runner: { mirror, trigger in
            let config = await state.config
            var options = RepositorySync.Options()
            options.trigger = trigger
            let sync = RepositorySync(config: config, store: store, supervisor: supervisor, credentials: credentials,
                                      options: options, hostLimiter: hostLimiter) { repository, remote, message in
                board.update(repository: repository, remote: remote, message: redactor.redact(message))
            }
            var runLogger = logger
            runLogger[metadataKey: "repository"] = "\(mirror.name)"
            runLogger.info("sync started", metadata: ["trigger": "\(trigger)"])
            return await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: sync.run(mirror)) }
            }
        },
        onFinished: { report in
            // Behind: since the secondary was last in step; one never in step is behind since the repository's first run.
            var behind: [String: Date] = [:]
            if report.secondaries.contains(where: { $0.failure != nil }) {
                let states = (try? store.remoteStates()) ?? []
                let firstRun = try? store.firstRunStart(repository: report.repository)
                for remote in report.secondaries where remote.failure != nil {
                    behind[remote.remote] = states.first { $0.repository == report.repository && $0.remote == remote.remote }?.lastSuccess ?? firstRun
                }
            }
            metrics.record(report, behindSince: behind)
            notifier.observe(report)
            for remote in [report.primary] + report.secondaries {
                var metadata: Logger.Metadata = ["repository": "\(report.repository)", "remote": "\(remote.remote)",
                                                 "result": "\(remote.result.rawValue)", "run_id": "\(report.runId.map(String.init) ?? "-")"]
                if remote.result == .interrupted {
                    logger.info("interrupted; retried on the next start", metadata: metadata)
                } else if let failure = remote.failure {
                    metadata["error_class"] = "\(failure.errorClass.rawValue)"
                    logger.warning("\(redactor.redact(failure.message))", metadata: metadata)
                } else {
                    logger.info("in step", metadata: metadata)
                }
            }
        },
        onSchedule: { entry in try? store.recordSchedule(entry) })

    let reload: @Sendable () async -> Result<Config, Error> = {
        SystemdNotify.send("RELOADING=1")
        defer { SystemdNotify.send("READY=1") }
        do {
            let config = try await state.reload(redactor: redactor)
            await scheduler.update(config)
            notifier.setTargets(try notifyTargets(config, environment: environment, redactor: redactor))
            metrics.recordReload(success: true)
            metrics.keepBehind(only: Set(config.repositories.map(\.name)))
            logger.info("configuration reloaded", metadata: ["repositories": "\(config.repositories.count)"])
            return .success(config)
        } catch {
            metrics.recordReload(success: false)
            logger.error("the new configuration is invalid and was not applied; the previous one keeps running\n\(error)")
            return .failure(error)
        }
    }

    let router = makeRouter(state: state, scheduler: scheduler, metrics: metrics, store: store, reload: reload, logger: logger)
    let address = try bindAddress(listen ?? loaded.daemon.listen)
    let binding = ServerBinding()
    let application = Application(router: router, configuration: .init(address: address, serverName: "gitmirror"),
                                  onServerRunning: { channel in
                                      await binding.bound(channel.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "\(address)")
                                  },
                                  logger: logger)
    // The grace period is read when the shutdown begins: a reload that changed it counts.
    let schedulerService = SchedulerService(scheduler: scheduler, registry: registry, grace: { await state.config.daemon.shutdownGrace },
                                            binding: binding, logger: logger)
    return ServiceGroup(configuration: .init(
        services: [.init(service: application), .init(service: ReloadService(reload: reload)),
                   .init(service: ConfigWatchService(file: configFile, reload: reload)), .init(service: schedulerService),
                   .init(service: RetentionService(state: state, store: store, logger: logger))],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger))
}

/// The notify targets with their secrets read: a URL from url_env/url_file is checked as one written in the file.
func notifyTargets(_ config: Config, environment: [String: String], redactor: Redactor) throws -> [Notifier.Target] {
    let resolver = CredentialResolver(environment: environment, redactor: redactor)
    return try config.daemon.notify.enumerated().map { index, target in
        var url = target.url
        if let source = target.urlSecret {
            let text = try resolver.read(source, for: "daemon.notify", key: "url").trimmingCharacters(in: .whitespacesAndNewlines)
            if let problem = notifyURLProblem(text) { throw SyncFailure(.config, "daemon.notify[\(index)] (\(source)): \(problem)") }
            url = URL(string: text)
            redactor.register(text)
        }
        guard let url else { throw SyncFailure(.config, "daemon.notify[\(index)] has no url") }
        return Notifier.Target(url: url, secret: try target.secret.map { try resolver.read($0, for: "daemon.notify", key: "secret") }, format: target.format)
    }
}

func bindAddress(_ text: String) throws -> BindAddress {
    if let problem = listenAddressProblem(text) { throw SyncFailure(.config, problem) }
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
        throw SyncFailure(.config, "--listen must be ADDRESS:PORT, for example 127.0.0.1:9150 (got '\(text)')")
    }
    var host = String(text[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    return .hostname(host.isEmpty ? "0.0.0.0" : host, port: port)
}

/// Reloads the configuration on SIGHUP.
struct ReloadService: Service {
    let reload: @Sendable () async -> Result<Config, Error>

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals { _ = await reload() }
        }
    }
}

/// Reloads the configuration when its file changes, as on SIGHUP. Kubernetes updates a mounted
/// ConfigMap by swapping a `..data` symlink, and nobody sends a signal; an edit in place is seen too.
/// What is compared is the file the path leads to now (through every link): its identity, size and time.
struct ConfigWatchService: Service {
    let file: URL
    let reload: @Sendable () async -> Result<Config, Error>
    var every: TimeInterval = 2

    static func fingerprint(_ file: URL) -> String? {
        var info = stat()
        guard stat(file.path, &info) == 0 else { return nil }
        let resolved = (try? FileManager.default.destinationOfSymbolicLink(atPath: file.path)) ?? ""
        return "\(file.resolvingSymlinksInPath().path) \(resolved) \(info.st_dev) \(info.st_ino) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    func run() async throws {
        let first = Self.fingerprint(file)
        await cancelWhenGracefulShutdown {
            var seen = first
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(every))
                let now = Self.fingerprint(file)
                // A file that is gone for a moment (mid-swap) is not a change: wait for the new one.
                guard let now, now != seen else { continue }
                seen = now
                _ = await reload()
            }
        }
    }
}

/// Applies the configured retention to the state database: once at start, then hourly.
struct RetentionService: Service {
    let state: DaemonState
    let store: StateStore
    let logger: Logger
    var every: TimeInterval = 3600

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let retention = await state.config.retention
                do {
                    let pruned = try store.prune(retention)
                    if pruned.runs > 0 {
                        logger.info("old runs pruned from the state database",
                                    metadata: ["runs": "\(pruned.runs)", "ref_updates": "\(pruned.refUpdates)"])
                    }
                } catch {
                    logger.warning("could not prune old runs from the state database: \(error)")
                }
                try? await Task.sleep(nanoseconds: UInt64(every * 1_000_000_000))
            }
        }
    }
}

/// Runs the scheduler; on shutdown starts nothing new, lets running syncs finish
/// within the grace period, then stops their workers.
struct SchedulerService: Service {
    let scheduler: Scheduler
    let registry: WorkerRegistry
    let grace: @Sendable () async -> TimeInterval
    let binding: ServerBinding
    let logger: Logger

    func run() async throws {
        // Ready means both: the first scheduling pass is done and the port is bound (hooks can arrive).
        let readiness = Task {
            var listening: String?
            while true {
                listening = await binding.address
                if listening != nil, await scheduler.isReady { break }
                try? await Task.sleep(nanoseconds: 50_000_000)
            }
            SystemdNotify.send("READY=1")
            let count = await scheduler.repositoryNames.count
            logger.info("daemon ready", metadata: ["repositories": "\(count)", "listening": "\(listening ?? "-")"])
        }
        await withGracefulShutdownHandler {
            await scheduler.run()
        } onGracefulShutdown: {
            Task { await scheduler.stop() }
        }
        readiness.cancel()
        SystemdNotify.send("STOPPING=1")
        let grace = await self.grace()
        let deadline = Date().addingTimeInterval(grace)
        var running = await scheduler.runningCount
        if running > 0 { logger.info("waiting for running syncs to finish", metadata: ["running": "\(running)", "grace": "\(formatDuration(grace))"]) }
        while running > 0 && Date() < deadline {
            try? await Task.sleep(nanoseconds: 100_000_000)
            running = await scheduler.runningCount
        }
        if running > 0 {
            logger.warning("grace period over; stopping the remaining syncs' workers", metadata: ["running": "\(running)"])
            registry.stopAll()
            let hardDeadline = Date().addingTimeInterval(15)
            while await scheduler.runningCount > 0 && Date() < hardDeadline { try? await Task.sleep(nanoseconds: 100_000_000) }
        }
    }
}

/// The address the HTTP server is bound to, once it is.
actor ServerBinding {
    private(set) var address: String?

    func bound(_ address: String) { self.address = address }
}

/// Lets the executable run the group without importing ServiceLifecycle.
public struct ServiceGroupRunner: Sendable {
    let group: ServiceGroup

    public init(_ group: ServiceGroup) { self.group = group }

    public func run() async throws { try await group.run() }
}
