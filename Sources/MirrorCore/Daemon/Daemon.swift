import Foundation
import Git
import Hummingbird
import HummingbirdCore
import Logging
import ServiceLifecycle
import UnixSignals

/// Builds the daemon: a ServiceGroup of the HTTP server, the SIGHUP reloader and the scheduler.
public func makeDaemon(configFile: URL, listen: String?, shard: Shard, executable: URL, version: String,
                       environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger) async throws -> ServiceGroup {
    Libgit2.initialize()
    let redactor = Redactor()
    let state = try DaemonState(config: try ConfigLoader.forThisMachine(environment: environment).load(file: configFile, environment: environment), configFile: configFile,
                                shard: shard, environment: environment, redactor: redactor)
    let store = try StateStore(path: await state.config.databaseURL.path)
    if let newer = store.newerSchema { throw newer }
    let credentials = CredentialResolver(environment: environment, redactor: redactor)
    // Discovered repositories as last listed are scheduled from the start; the listing itself runs in DiscoveryService.
    let discoverer = Discoverer(credentials: credentials, store: store)
    let loaded = await state.apply(discoverer.run(await state.written, list: false, record: false).config)
    let registry = WorkerRegistry()
    let metrics = DaemonMetrics(version: version)
    metrics.recordConfigLoaded()
    DaemonStart.markBehind(metrics, from: store, config: loaded)
    let notifier = Notifier(known: (try? store.remoteStates()) ?? [], logger: logger)
    notifier.setTargets(try notifyTargets(loaded, environment: environment, redactor: redactor))
    // Fixed at start, as the listening address is: a reload does not resize the limits of work in flight.
    let workers = Workers(executable: executable, registry: registry, hostLimiter: HostLimiter(loaded.daemon))
    // Long work says how far it is every 10 s, at info level, one line per remote.
    let board = ProgressBoard()
    _ = board.everyInterval(10) { entries in
        for entry in entries {
            logger.info("sync in progress", metadata: ["repository": "\(entry.repository)", "remote": "\(entry.remote)",
                                                       "progress": "\(entry.line)",
                                                       "elapsed": "\(formatDuration(Date().timeIntervalSince(entry.started)))"])
        }
    }

    let interrupted = DaemonStart.settleUnfinishedRuns(in: store, config: loaded, logger: logger)

    // The scheduler publishes each repository's next run; the recorder writes them in order, off the actor.
    let scheduleRecorder = ScheduleRecorder(store: store, logger: logger)
    let finishedRuns = FinishedRuns(store: store, metrics: metrics, notifier: notifier, redactor: redactor, logger: logger)
    let scheduler = Scheduler(
        config: loaded, logger: logger, startNow: interrupted,
        runner: { mirror, trigger in
            let config = await state.config
            var options = RepositorySync.Options()
            options.trigger = trigger
            // A hook or the sync API says the primary moved: its listing and fetch share one connection.
            options.listOnFetchConnection = trigger != "schedule"
            let sync = RepositorySync(config: config, store: store, workers: workers, credentials: credentials,
                                      options: options, warning: { logger.warning("\($0)") }) { note in
                var note = note
                note.message = redactor.redact(note.message)
                board.update(note)
            }
            var runLogger = logger
            runLogger[metadataKey: "repository"] = "\(mirror.name)"
            runLogger.info("sync started", metadata: ["trigger": "\(trigger)"])
            return await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: sync.run(mirror)) }
            }
        },
        onFinished: { report in finishedRuns.observe(report) },
        onSchedule: { entry in scheduleRecorder.record(entry) },
        onPass: { pass in
            metrics.recordPass(pass)
            logger.info("full pass finished", metadata: ["repositories": "\(pass.repositories)", "duration": "\(formatDuration(pass.duration))"])
            Thread.detachNewThread {
                do {
                    try store.recordPass(pass)
                } catch {
                    logger.warning("could not record the full pass in the state database (status shows the previous one)", metadata: ["error": "\(error)"])
                }
            }
        },
        onOverdue: { count in metrics.recordOverdue(count) })
    metrics.recordOverdue(0)

    let discovery = DiscoveryService(state: state, discoverer: discoverer, apply: { expanded in
        let owned = await state.apply(expanded)
        await scheduler.update(owned)
        metrics.keepBehind(only: Set(owned.repositories.map(\.name)))
    }, logger: logger)

    let reload: @Sendable () async -> Result<Config, any Error> = {
        SystemdNotify.send("RELOADING=1")
        defer { SystemdNotify.send("READY=1") }
        do {
            let config = try await state.reload(redactor: redactor) { discoverer.run($0, list: false, record: false).config }
            await scheduler.update(config)
            notifier.setTargets(try notifyTargets(config, environment: environment, redactor: redactor))
            metrics.recordReload(success: true)
            metrics.keepBehind(only: Set(config.repositories.map(\.name)))
            logger.info("configuration reloaded", metadata: ["repositories": "\(config.repositories.count)"])
            // The sources (perhaps new ones, or new filters) are listed again now, not at the next interval.
            if !(await state.written.discover.isEmpty) { Task { await discovery.discover() } }
            return .success(config)
        } catch {
            // Said before it is counted: whoever sees the failed reload in the metrics finds it in the log.
            logger.error("the new configuration is invalid and was not applied; the previous one keeps running\n\(error)")
            metrics.recordReload(success: false)
            return .failure(error)
        }
    }

    let router = makeRouter(state: state, scheduler: scheduler, metrics: metrics, store: store, ui: loaded.daemon.ui, reload: reload, logger: logger)
    let address = try bindAddress(listen ?? loaded.daemon.listen)
    let binding = ServerBinding()
    // Fixed at start, as the address is. Descriptors first: systemd's soft limit of 1024 is raised to the hard one.
    let descriptors = raiseDescriptorLimit()
    let limits = loaded.daemon.http
    let application = Application(router: router, server: guardedServer(limits: limits, peers: PeerConnections(), logger: logger),
                                  configuration: .init(address: address, serverName: "gitmirror",
                                                       availableConnectionsDelegate: MaximumAvailableConnections(limits.totalConnections(descriptors: descriptors))),
                                  onServerRunning: { channel in
                                      binding.bound(channel.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "\(address)")
                                  },
                                  logger: logger)
    // The grace period is read when the shutdown begins: a reload that changed it counts.
    let schedulerService = SchedulerService(scheduler: scheduler, registry: registry, grace: { await state.config.daemon.shutdownGrace },
                                            binding: binding, logger: logger)
    return ServiceGroup(configuration: .init(
        // Shut down in reverse: the scheduler first, then the recorder writes what it published last.
        services: [.init(service: scheduleRecorder), .init(service: application), .init(service: ReloadService(reload: reload)),
                   .init(service: ConfigWatchService(file: configFile, reload: reload)), .init(service: schedulerService),
                   .init(service: discovery),
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

/// Lets the executable run the group without importing ServiceLifecycle.
public struct ServiceGroupRunner: Sendable {
    let group: ServiceGroup

    public init(_ group: ServiceGroup) { self.group = group }

    public func run() async throws { try await group.run() }
}
