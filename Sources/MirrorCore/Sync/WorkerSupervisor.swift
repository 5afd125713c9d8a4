import Foundation

/// Runs every network operation in a worker process and kills the worker (SIGKILL)
/// when the operation passes its wall-clock limit or stays silent past its stall limit.
/// A worker that finished its operation is kept for the next one (starting a process
/// costs more than a listing on a fast network); it never serves a different trust
/// store (`ca_file`), and it exits by itself after a short idle time.
public struct WorkerSupervisor: Sendable {
    public let executable: URL
    public let arguments: [String]
    /// Set by the daemon and the CLI, so that a shutdown can stop running workers.
    public let registry: WorkerRegistry?
    let pool = WorkerPool()
    let listings = ListingWorkers()
    /// How long an idle worker waits for its next operation before it exits.
    public static let idleExit: TimeInterval = 20

    public init(executable: URL, arguments: [String] = ["__worker"], registry: WorkerRegistry? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.registry = registry
    }

    /// The worker processes kept for the next operations (idle, or running listings).
    var keptProcesses: Set<pid_t> { pool.idleProcesses.union(listings.processes) }

    static let interrupted = SyncFailure(.interrupted, "gitmirror was stopped (Ctrl-C or SIGTERM) during this operation; it is retried on the next run")

    public struct Limits: Sendable {
        public var timeout: TimeInterval
        public var stall: TimeInterval

        public init(timeout: TimeInterval, stall: TimeInterval) {
            self.timeout = timeout
            self.stall = stall
        }
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

    public func run(_ request: WorkerRequest, limits: Limits, progress: @escaping @Sendable (String) -> Void = { _ in }) -> Result<WorkerResult, SyncFailure> {
        _ = Self.ignoreBrokenPipes
        if registry?.isStopping == true { return .failure(Self.interrupted) }
        var job: Data
        do {
            job = try JSONEncoder().encode(request)
        } catch {
            return .failure(SyncFailure(.internal, "cannot encode the worker's job: \(error)"))
        }
        job.append(0x0A)
        let trust = request.caFile ?? ""
        if request.operation.isListing { return list(request, trust: trust, limits: limits, progress: progress) }
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
            switch operate(worker, job: job, limits: limits, progress: progress) {
            case .finished(let outcome):
                if registry?.isStopping == true { worker.close() } else { pool.put(worker) }
                return outcome
            case .lostBeforeStart where reused && registry?.isStopping != true:
                worker.reap()
                continue
            case .lostBeforeStart, .died:
                let status = worker.reap()
                if registry?.isStopping == true { return .failure(Self.interrupted) }
                let stderr = worker.channel.errorText.trimmingCharacters(in: .whitespacesAndNewlines)
                let how = status > 128 ? "was killed by signal \(status - 128)" : "exited with status \(status)"
                return .failure(SyncFailure(.internal, "the worker \(how) without a result" + (stderr.isEmpty ? "" : ": \(stderr.suffix(500))")))
            case .killed(let failure):
                worker.reap()
                return .failure(failure)
            }
        }
        return .failure(SyncFailure(.internal, "workers kept exiting before they could take the job"))
    }

    /// A listing, on a worker that runs several (ListingWorkers). One that lost its worker to another
    /// listing's limit, or to a worker that was gone before it answered, runs again on another.
    private func list(_ request: WorkerRequest, trust: String, limits: Limits, progress: @escaping @Sendable (String) -> Void) -> Result<WorkerResult, SyncFailure> {
        var crashes = 0
        for _ in 0..<5 {
            if registry?.isStopping == true { return .failure(Self.interrupted) }
            let worker: SharedWorker
            do {
                worker = try listings.take(trust: trust) {
                    let (child, input, output, errors) = try spawnProcess()
                    let started = SharedWorker(child: child, input: input, output: output, errors: errors, trust: trust, registry: registry)
                    if let registry, !registry.register(child) { child.signalGroup(SIGKILL) }
                    return started
                }
            } catch {
                return .failure(SyncFailure(.internal, "cannot start the worker \(executable.path): \(error)"))
            }
            switch worker.run(request, limits: limits, progress: progress) {
            case .finished(let outcome):
                return outcome
            case .killed(let failure):
                return .failure(failure)
            case .lost(let killedForAnother, let heard):
                if registry?.isStopping == true { return .failure(Self.interrupted) }
                if killedForAnother || !heard { continue }
                // Died under this listing (and maybe because of it): once more, then it is this listing's failure.
                crashes += 1
                if crashes < 2 { continue }
                let status = worker.child.wait()
                let stderr = worker.errorText.trimmingCharacters(in: .whitespacesAndNewlines)
                let how = status > 128 ? "was killed by signal \(status - 128)" : "exited with status \(status)"
                return .failure(SyncFailure(.internal, "the worker \(how) without a result" + (stderr.isEmpty ? "" : ": \(stderr.suffix(500))")))
            }
        }
        return .failure(SyncFailure(.internal, "workers kept exiting before they could answer the listing"))
    }

    enum Operation {
        case finished(Result<WorkerResult, SyncFailure>)
        /// The worker was gone before it said anything about this job.
        case lostBeforeStart
        case died
        case killed(SyncFailure)
    }

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

    /// Sends one job to the worker and waits for its answer within the limits.
    private func operate(_ worker: PooledWorker, job: Data, limits: Limits, progress: @escaping @Sendable (String) -> Void) -> Operation {
        let started = Date()
        worker.channel.begin(progress: progress)
        guard worker.send(job) else { return worker.channel.heardFromJob ? .died : .lostBeforeStart }
        while true {
            switch worker.channel.wait(0.1) {
            case .answered(let outcome):
                return .finished(outcome)
            case .closed:
                return worker.channel.heardFromJob ? .died : .lostBeforeStart
            case .pending:
                let now = Date()
                var killedFor: SyncFailure?
                if now.timeIntervalSince(started) > limits.timeout {
                    killedFor = SyncFailure(.timeout, "gave up after \(formatDuration(limits.timeout)) (timeout); the operation was still running and was stopped")
                } else if now.timeIntervalSince(worker.channel.lastActivity) > limits.stall {
                    killedFor = SyncFailure(.timeout, "the server sent nothing for \(formatDuration(limits.stall)) (stall_timeout); the connection was abandoned")
                }
                if let killedFor {
                    worker.child.signalGroup(SIGKILL)
                    return .killed(killedFor)
                }
            }
        }
    }
}

/// Workers that finished an operation and wait for the next, by trust store.
final class WorkerPool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [PooledWorker] = []

    /// An idle worker for this trust store that is still running; workers that exited are reaped.
    func take(trust: String) -> PooledWorker? {
        lock.lock()
        var gone: [PooledWorker] = []
        idle.removeAll { worker in
            let expired = !worker.child.isRunning || worker.channel.isClosed
                || Date().timeIntervalSince(worker.idleSince) > WorkerSupervisor.idleExit - 2
            if expired { gone.append(worker) }
            return expired
        }
        let index = idle.lastIndex { $0.trust == trust }
        let worker = index.map { idle.remove(at: $0) }
        lock.unlock()
        for worker in gone { worker.close() }
        return worker
    }

    /// The processes waiting in the pool.
    var idleProcesses: Set<pid_t> {
        lock.lock()
        defer { lock.unlock() }
        return Set(idle.map(\.child.pid))
    }

    /// Jobs one worker serves before it is retired: a daemon that is never idle still
    /// starts fresh processes now and then, so nothing libgit2 keeps can grow for a year.
    static let jobsPerWorker = 200

    func put(_ worker: PooledWorker) {
        worker.idleSince = Date()
        worker.jobs += 1
        if worker.jobs >= Self.jobsPerWorker {
            worker.close()
            return
        }
        lock.lock()
        idle.append(worker)
        lock.unlock()
    }
}

/// One worker process and the pipes to it.
final class PooledWorker: @unchecked Sendable {
    let child: ChildProcess
    let trust: String
    let channel = WorkerChannel()
    var idleSince = Date()
    var jobs = 0
    private let input: Int32
    private let registry: WorkerRegistry?
    private let lock = NSLock()
    private var inputOpen = true

    init(child: ChildProcess, input: Int32, trust: String, registry: WorkerRegistry?) {
        self.child = child
        self.input = input
        self.trust = trust
        self.registry = registry
    }

    /// Writes the job; false when the worker is gone.
    func send(_ job: Data) -> Bool {
        writeAll(input, job)
    }

    private func closeInput() {
        lock.lock()
        defer { lock.unlock() }
        if inputOpen {
            inputOpen = false
            Glibc.close(input)
        }
    }

    /// Lets an idle worker go: end of input makes it exit; reaped in the background.
    func close() {
        closeInput()
        registry?.unregister(child)
        let child = self.child
        Thread.detachNewThread { _ = child.wait() }
    }

    /// Waits for a worker that died or was killed; returns its exit status.
    @discardableResult
    func reap() -> Int32 {
        closeInput()
        let status = child.wait()
        registry?.unregister(child)
        _ = channel.waitClosed(2)
        return status
    }
}

/// What the reader threads learn from one worker, job by job, shared with the waiting thread.
final class WorkerChannel: @unchecked Sendable {
    enum State {
        case pending
        case answered(Result<WorkerResult, SyncFailure>)
        case closed
    }

    private let condition = NSCondition()
    private var _lastActivity = Date()
    private var answer: Result<WorkerResult, SyncFailure>?
    private var heard = false
    private var openStreams = 2
    private var eventsClosed = false
    private var progress: (@Sendable (String) -> Void)?
    private var errorBuffer = Data()

    var lastActivity: Date { condition.lock(); defer { condition.unlock() }; return _lastActivity }
    var errorText: String { condition.lock(); defer { condition.unlock() }; return String(decoding: errorBuffer, as: UTF8.self) }
    var isClosed: Bool { condition.lock(); defer { condition.unlock() }; return eventsClosed }
    /// Whether the worker said anything (progress or answer) since the current job was sent.
    var heardFromJob: Bool { condition.lock(); defer { condition.unlock() }; return heard }

    func begin(progress: @escaping @Sendable (String) -> Void) {
        condition.lock()
        answer = nil
        heard = false
        _lastActivity = Date()
        self.progress = progress
        condition.unlock()
    }

    /// Waits up to `seconds` for the current job's answer or the worker's end.
    func wait(_ seconds: TimeInterval) -> State {
        condition.lock()
        defer { condition.unlock() }
        if answer == nil && !eventsClosed { _ = condition.wait(until: Date().addingTimeInterval(seconds)) }
        if let answer { return .answered(answer) }
        return eventsClosed ? .closed : .pending
    }

    func waitClosed(_ seconds: TimeInterval) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(seconds)
        while openStreams > 0 && condition.wait(until: deadline) {}
        return openStreams == 0
    }

    private func streamClosed() {
        condition.lock()
        openStreams -= 1
        condition.broadcast()
        condition.unlock()
    }

    func readEvents(from descriptor: Int32) {
        var buffer = Data()
        let decoder = JSONDecoder()
        Self.read(descriptor) { chunk in
            condition.lock()
            _lastActivity = Date()
            heard = true
            condition.unlock()
            buffer.append(contentsOf: chunk)
            while let newline = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                guard let event = try? decoder.decode(WorkerEvent.self, from: line) else { continue }
                condition.lock()
                let report = progress
                condition.unlock()
                if let text = event.progress { report?(text) }
                condition.lock()
                if let result = event.result { answer = .success(result) }
                if let failure = event.failure { answer = .failure(failure) }
                if answer != nil { condition.broadcast() }
                condition.unlock()
            }
        }
        condition.lock()
        eventsClosed = true
        condition.unlock()
        streamClosed()
    }

    func readErrors(from descriptor: Int32) {
        Self.read(descriptor) { chunk in
            condition.lock()
            errorBuffer.append(contentsOf: chunk)
            if errorBuffer.count > 64 * 1024 { errorBuffer.removeFirst(errorBuffer.count - 64 * 1024) }
            condition.unlock()
        }
        streamClosed()
    }

    /// Reads until end of file, chunk by chunk, then closes the descriptor.
    static func read(_ descriptor: Int32, _ body: (ArraySlice<UInt8>) -> Void) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = Glibc.read(descriptor, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            body(chunk[0..<count])
        }
        Glibc.close(descriptor)
    }
}
