import Foundation

/// The one way the supervisor runs a job: in a worker process, within its host's and its repository's
/// limits, killed (SIGKILL) when it passes its wall-clock limit or stays silent past its stall limit.
///
/// A worker that finished its job is kept for the next one (starting a process costs more than a
/// listing on a fast network); it never serves a different trust store (`ca_file`), and it exits by
/// itself after a short idle time. Listings share a worker, many at once (ListingWorkers); other jobs
/// have one each (WorkerPool). Every thread, lock and pipe of this is in this folder.
public struct Workers: Sendable {
    public let executable: URL
    public let arguments: [String]
    /// Set by the daemon and the CLI, so that a shutdown can stop running workers.
    public let registry: WorkerRegistry?
    /// Bounds connections per host and repositories transferring at once, across every job of the process.
    public let hostLimiter: HostLimiter?
    let pool = WorkerPool()
    let listings = ListingWorkers()
    /// How long an idle worker waits for its next job before it exits.
    public static let idleExit: TimeInterval = 20

    public init(executable: URL, arguments: [String] = ["__worker"], registry: WorkerRegistry? = nil, hostLimiter: HostLimiter? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.registry = registry
        self.hostLimiter = hostLimiter
    }

    public struct Limits: Sendable {
        public var timeout: TimeInterval
        public var stall: TimeInterval

        public init(timeout: TimeInterval, stall: TimeInterval) {
            self.timeout = timeout
            self.stall = stall
        }
    }

    public var isStopping: Bool { registry?.isStopping == true }

    /// The worker processes kept for the next jobs (idle, or running listings).
    var keptProcesses: Set<pid_t> { pool.idleProcesses.union(listings.processes) }

    static let interrupted = SyncFailure(.interrupted, "gitmirror was stopped (Ctrl-C or SIGTERM) during this operation; it is retried on the next run")

    /// Runs `job` for `repository` and returns its result, or the failure that ended it. `progress` gets
    /// the worker's notes, on a reader thread: it must hand them off, never block.
    public func run<J: Job>(_ job: J, for repository: String, limits: Limits,
                            progress: @escaping @Sendable (JobNote) -> Void = { _ in }) throws(SyncFailure) -> J.Result {
        let body = { () -> Result<J.Result, SyncFailure> in
            var job = job
            // Connections beside the job's own take a slot on their host if one is free now (never waiting
            // while this job holds its own), and are given back with the job's.
            var riders: [HostLimiter.Connection] = []
            if let hostLimiter {
                job.admitConnections { host in
                    guard let connection = hostLimiter.connectionIfFree(to: host) else { return false }
                    riders.append(connection)
                    return true
                }
            }
            defer { riders.forEach { $0.release() } }
            return self.dispatch(job, limits: limits, progress: progress).flatMap { Wire.decode($0, as: J.Result.self) }
        }
        let host = J.kind == .cache ? nil : job.endpoint?.host ?? "local"
        let result = hostLimiter.map { $0.withSlot(host: host, repository: repository, transfer: J.kind.takesTransferSlot, body) } ?? body()
        return try result.get()
    }

    /// Sends the job to a worker of the kind it needs and waits for its answer.
    private func dispatch<J: Job>(_ job: J, limits: Limits, progress: @escaping @Sendable (JobNote) -> Void) -> Result<Wire.Answer, SyncFailure> {
        _ = Self.ignoreBrokenPipes
        if isStopping { return .failure(Self.interrupted) }
        let trust = job.endpoint?.caFile ?? ""
        if J.kind.sharesWorker { return share(job, trust: trust, limits: limits, progress: progress) }
        let line: Data
        switch Wire.encode(job, id: nil) {
        case .success(let encoded): line = encoded
        case .failure(let failure): return .failure(failure)
        }
        // An idle worker may have exited (idle time, killed) just as it was taken: then a new one.
        for _ in 0..<3 {
            let worker: PooledWorker
            let reused: Bool
            if let idle = pool.take(trust: trust) {
                worker = idle
                reused = true
            } else {
                do {
                    worker = try spawn(trust: trust)
                } catch {
                    return .failure(SyncFailure(.internal, "cannot start the worker \(executable.path): \(error)"))
                }
                reused = false
            }
            switch worker.operate(line, limits: limits, progress: progress) {
            case .finished(let answer):
                if isStopping { worker.close() } else { pool.put(worker) }
                return .success(answer)
            case .lostBeforeStart where reused && !isStopping:
                worker.reap()
                continue
            case .lostBeforeStart, .died:
                let status = worker.reap()
                if isStopping { return .failure(Self.interrupted) }
                return .failure(Self.died(status: status, stderr: worker.channel.errorText))
            case .killed(let failure):
                worker.reap()
                return .failure(failure)
            }
        }
        return .failure(SyncFailure(.internal, "workers kept exiting before they could take the job"))
    }

    /// A listing, on a worker that runs several (ListingWorkers). One that lost its worker to another
    /// listing's limit, or to a worker that was gone before it answered, runs again on another.
    private func share<J: Job>(_ job: J, trust: String, limits: Limits, progress: @escaping @Sendable (JobNote) -> Void) -> Result<Wire.Answer, SyncFailure> {
        var crashes = 0
        for _ in 0..<5 {
            if isStopping { return .failure(Self.interrupted) }
            let worker: SharedWorker
            do {
                worker = try listings.take(trust: trust) { try startShared(trust: trust) }
            } catch {
                return .failure(SyncFailure(.internal, "cannot start the worker \(executable.path): \(error)"))
            }
            switch worker.run(job, limits: limits, progress: progress) {
            case .finished(let answer):
                return answer
            case .killed(let failure):
                return .failure(failure)
            case .lost(let killedForAnother, let heard):
                if isStopping { return .failure(Self.interrupted) }
                if killedForAnother || !heard { continue }
                // Died under this listing (and maybe because of it): once more, then it is this listing's failure.
                crashes += 1
                if crashes < 2 { continue }
                return .failure(Self.died(status: worker.child.wait(), stderr: worker.errorText))
            }
        }
        return .failure(SyncFailure(.internal, "workers kept exiting before they could answer the listing"))
    }

    private func startShared(trust: String) throws -> SharedWorker {
        let (child, input, output, errors) = try spawnProcess()
        let started = SharedWorker(child: child, input: input, output: output, errors: errors, trust: trust, registry: registry)
        if let registry, !registry.register(child) { child.signalGroup(SIGKILL) }
        return started
    }

    /// Starts a listing worker for the default trust store now, so that its start (~70 ms: exec, the
    /// dynamic linker, Swift's runtime) runs while the supervisor reads its configuration, state and
    /// caches, not after. One that no listing takes exits when idle, as any worker does.
    public func prestartListings() {
        _ = Self.ignoreBrokenPipes
        if isStopping { return }
        listings.prestart(trust: "") { try startShared(trust: "") }
    }

    /// How many workers for `trust` wait idle (some may be starting still).
    public func idleCount(trust: String) -> Int { pool.idleCount(trust: trust) }

    /// Starts `count` more workers for `trust`, so that the pushes after a fetch do not each wait for a
    /// process to start: they start while the fetch runs. A worker no job takes exits when idle, as any
    /// worker does.
    public func prestart(more count: Int, trust: String) {
        _ = Self.ignoreBrokenPipes
        for _ in 0..<max(0, count) {
            if isStopping { return }
            guard let worker = try? spawn(trust: trust) else { return }
            pool.add(worker)
        }
    }

    /// Starts workers for `trust` until `count` of them wait idle.
    public func prestart(_ count: Int, trust: String) {
        prestart(more: count - pool.idleCount(trust: trust), trust: trust)
    }

    static func died(status: Int32, stderr: String) -> SyncFailure {
        let said = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        let how = status > 128 ? "was killed by signal \(status - 128)" : "exited with status \(status)"
        return SyncFailure(.internal, "the worker \(how) without a result" + (said.isEmpty ? "" : ": \(said.suffix(500))"))
    }

    /// Why a job past its limits is stopped, or nil while it is within them.
    static func overrun(_ limits: Limits, started: Date, lastActivity: Date, now: Date = Date()) -> SyncFailure? {
        if now.timeIntervalSince(started) > limits.timeout {
            return SyncFailure(.timeout, "gave up after \(formatDuration(limits.timeout)) (timeout); the operation was still running and was stopped")
        }
        if now.timeIntervalSince(lastActivity) > limits.stall {
            return SyncFailure(.timeout, "the server sent nothing for \(formatDuration(limits.stall)) (stall_timeout); the connection was abandoned")
        }
        return nil
    }

    /// The environment a worker gets: enough to run, and no secret (those travel on stdin).
    static func workerEnvironment() -> [String: String] {
        let parent = ProcessInfo.processInfo.environment
        var environment: [String: String] = ["PATH": parent["PATH"] ?? "/usr/bin:/bin", "LANG": "C.UTF-8"]
        environment["HOME"] = parent["HOME"] ?? NSHomeDirectory()
        if let tmp = parent["TMPDIR"] { environment["TMPDIR"] = tmp }
        return environment
    }

    /// A worker that dies before reading its job must not kill the supervisor with SIGPIPE.
    private static let ignoreBrokenPipes: Void = { signal(SIGPIPE, SIG_IGN) }()

    private func spawn(trust: String) throws -> PooledWorker {
        let (child, input, output, errors) = try spawnProcess()
        let worker = PooledWorker(child: child, input: input, trust: trust, registry: registry)
        if let registry, !registry.register(child) { child.signalGroup(SIGKILL) }
        Thread.detachNewThread { worker.channel.readEvents(from: output) }
        Thread.detachNewThread { worker.channel.readErrors(from: errors) }
        return worker
    }

    /// A worker process: its pid, and the supervisor's ends of its stdin, stdout and stderr.
    private func spawnProcess() throws -> (ChildProcess, Int32, Int32, Int32) {
        try ChildProcess.withSpawnLock {
            let stdin = try ChildProcess.makePipe(), stdout = try ChildProcess.makePipe(), stderr = try ChildProcess.makePipe()
            defer {
                close(stdin.read)
                close(stdout.write)
                close(stderr.write)
            }
            // The worker watches that it is still this process's child; passing the pid
            // closes the race where the supervisor dies between spawn and the worker's first look.
            let child = try ChildProcess([executable.path] + arguments + ["--supervisor", String(getpid()), "--idle-exit", String(Int(Self.idleExit))],
                                         environment: Self.workerEnvironment(),
                                         stdin: stdin.read, stdout: stdout.write, stderr: stderr.write,
                                         // SIGINT stays as the supervisor has it (ignored while it handles Ctrl-C):
                                         // a worker between exec and its own handler must not die of it.
                                         resetSignals: [SIGTERM],
                                         // Its own process group: killing a worker also kills the git, ssh and
                                         // pack-objects it started, which would otherwise wait on a hung server forever.
                                         newProcessGroup: true)
            return (child, stdin.write, stdout.read, stderr.read)
        }
    }
}
