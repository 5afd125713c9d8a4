import Foundation

/// Workers that run several listings at once (`WorkerRequest.Operation.isListing`), each on a
/// thread of its own in the worker, told apart by the job's id.
///
/// A listing mostly waits on the network: a pass over a far-away fleet keeps dozens in flight,
/// and one worker process each would cost a process start and ~36 MiB each. Here at most
/// `perWorker` listings share a worker. The limits stay per listing: a listing past its timeout
/// or stall limit has the worker killed (the only way to stop a hung libgit2 call), and the
/// listings that shared it, which read nothing and wrote nothing, run again on another worker.
final class ListingWorkers: @unchecked Sendable {
    /// Listings one worker runs at once. A worker's start is most of its cost (~50 ms of CPU: the
    /// dynamic linker, Swift's runtime, libgit2's CA store), and a listing thread almost none: at 4,
    /// a 32-listing pass started 8 workers, a fifth of its CPU. A killed worker's other listings
    /// (read nothing, wrote nothing) run again on the next one.
    static let perWorker = 16
    /// Listings one worker serves before it is retired (as `WorkerPool.jobsPerWorker` for the other
    /// jobs): a listing keeps nothing once it is done, and at 200 a 200-repository pass started a third
    /// more workers than it ran at once, each start a few dozen milliseconds of CPU the listings waited on.
    static let listingsPerWorker = 1000

    private let lock = NSLock()
    private var workers: [SharedWorker] = []

    /// A running worker for this trust store with room for one more listing, the busiest first
    /// (so that a pass uses as few processes as it can), or else one `start` makes; its place for the
    /// listing is reserved. Workers that are gone or idle too long are let go. A worker is started
    /// with the lock held: the listings a pass starts together then share the first worker rather than
    /// each starting one (a listing sent before the worker reads it waits in the pipe).
    func take(trust: String, orStart start: () throws -> SharedWorker) rethrows -> SharedWorker {
        lock.lock()
        var gone: [SharedWorker] = []
        defer {
            lock.unlock()
            for worker in gone { worker.close() }
        }
        workers.removeAll { worker in
            let expired = worker.isClosed || (worker.load == 0 && worker.idleFor > WorkerSupervisor.idleExit - 2)
            if expired { gone.append(worker) }
            return expired
        }
        let candidates = workers
            .filter { $0.trust == trust && !$0.isRetiring && $0.load < Self.perWorker }
            .sorted { $0.load > $1.load }
        for worker in candidates where worker.reserve() { return worker }
        let started = try start()
        _ = started.reserve()
        workers.append(started)
        return started
    }

    var processes: Set<pid_t> {
        lock.withLock { Set(workers.filter { !$0.isClosed }.map(\.child.pid)) }
    }
}

/// One worker process that runs several listings at once, and what each of them has said.
final class SharedWorker: @unchecked Sendable {
    let child: ChildProcess
    let trust: String
    private let input: Int32
    private let registry: WorkerRegistry?
    private let lock = NSLock()

    private struct Job {
        var progress: @Sendable (String) -> Void
        var lastActivity: Date
        var answer: Result<WorkerResult, SyncFailure>?
        var heard = false
        /// Signalled when this listing's answer comes or the worker is gone: each listing waits on its
        /// own, since one condition broadcast woke all sixteen listings for each answer.
        let wake = DispatchSemaphore(value: 0)
    }

    private var jobs: [Int: Job] = [:]
    private var reserved = 0
    private var nextID = 1
    private var served = 0
    private var lastBusy = Date()
    private var eventsClosed = false
    private var inputOpen = true
    private var killedFor: Int?
    private var errorBuffer = Data()

    init(child: ChildProcess, input: Int32, output: Int32, errors: Int32, trust: String, registry: WorkerRegistry?) {
        self.child = child
        self.input = input
        self.trust = trust
        self.registry = registry
        Thread.detachNewThread { [self] in readEvents(from: output) }
        Thread.detachNewThread { [self] in readErrors(from: errors) }
    }

    /// Listings under way or about to be sent.
    var load: Int { lock.withLock { reserved + jobs.count } }
    var isClosed: Bool { lock.withLock { eventsClosed } }
    var idleFor: TimeInterval { lock.withLock { Date().timeIntervalSince(lastBusy) } }
    /// After `ListingWorkers.listingsPerWorker` listings a worker takes no more and leaves when its last one ends.
    var isRetiring: Bool { lock.withLock { served + reserved >= ListingWorkers.listingsPerWorker } }
    var errorText: String { lock.withLock { String(decoding: errorBuffer, as: UTF8.self) } }

    /// Holds a place for a listing about to be sent; false when the worker is full or gone.
    func reserve() -> Bool {
        lock.withLock {
            guard !eventsClosed, reserved + jobs.count < ListingWorkers.perWorker else { return false }
            reserved += 1
            return true
        }
    }

    enum Outcome {
        case finished(Result<WorkerResult, SyncFailure>)
        /// The worker is gone without this listing's answer: killed for another listing's limit, or
        /// it died. `heard` says whether this listing had said anything.
        case lost(killedForAnother: Bool, heard: Bool)
        case killed(SyncFailure)
    }

    /// Sends one listing (its place reserved) and waits for its answer within its limits.
    func run(_ request: WorkerRequest, limits: WorkerSupervisor.Limits, progress: @escaping @Sendable (String) -> Void) -> Outcome {
        var request = request
        let (id, started): (Int, Date) = lock.withLock {
            reserved -= 1
            let id = nextID
            nextID += 1
            jobs[id] = Job(progress: progress, lastActivity: Date())
            return (id, Date())
        }
        request.id = id
        defer { finish(id) }
        guard var job = try? JSONEncoder().encode(request) else {
            return .finished(.failure(SyncFailure(.internal, "cannot encode the worker's job")))
        }
        job.append(0x0A)
        if !send(job) { return lostOutcome(id) }
        let wake = lock.withLock { jobs[id]?.wake }
        while true {
            // Checked, then waited for: a signal given in between is kept by the semaphore.
            let (answer, closed, lastActivity) = lock.withLock { () -> (Result<WorkerResult, SyncFailure>?, Bool, Date) in
                (jobs[id]?.answer, eventsClosed, jobs[id]?.lastActivity ?? started)
            }
            if let answer { return .finished(answer) }
            if closed { return lostOutcome(id) }
            let now = Date()
            var killedFor: SyncFailure?
            if now.timeIntervalSince(started) > limits.timeout {
                killedFor = SyncFailure(.timeout, "gave up after \(formatDuration(limits.timeout)) (timeout); the operation was still running and was stopped")
            } else if now.timeIntervalSince(lastActivity) > limits.stall {
                killedFor = SyncFailure(.timeout, "the server sent nothing for \(formatDuration(limits.stall)) (stall_timeout); the connection was abandoned")
            }
            if let killedFor {
                let first = lock.withLock { () -> Bool in
                    if self.killedFor != nil || eventsClosed { return false }
                    self.killedFor = id
                    return true
                }
                if first {
                    child.signalGroup(SIGKILL)
                    return .killed(killedFor)
                }
                return lostOutcome(id)
            }
            _ = wake?.wait(timeout: .now() + 0.1)
        }
    }

    private func lostOutcome(_ id: Int) -> Outcome {
        lock.withLock {
            .lost(killedForAnother: killedFor != nil && killedFor != id, heard: jobs[id]?.heard ?? false)
        }
    }

    /// The listing is over: forget it; a retiring worker whose last listing this was is let go.
    private func finish(_ id: Int) {
        let leave = lock.withLock { () -> Bool in
            jobs[id] = nil
            served += 1
            lastBusy = Date()
            return jobs.isEmpty && reserved == 0 && (served >= ListingWorkers.listingsPerWorker || registry?.isStopping == true)
        }
        if leave { close() }
    }

    private func send(_ job: Data) -> Bool {
        lock.withLock {
            guard inputOpen else { return false }
            return writeAll(input, job)
        }
    }

    /// Lets the worker go: the end of its input makes it exit once its listings are answered.
    func close() {
        lock.withLock {
            if inputOpen {
                inputOpen = false
                Glibc.close(input)
            }
        }
    }

    private func readEvents(from descriptor: Int32) {
        var buffer = Data()
        let decoder = JSONDecoder()
        WorkerChannel.read(descriptor) { chunk in
            buffer.append(contentsOf: chunk)
            while let newline = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                guard let event = try? decoder.decode(WorkerEvent.self, from: line), let id = event.id else { continue }
                let report = lock.withLock { () -> (@Sendable (String) -> Void)? in
                    guard jobs[id] != nil else { return nil }
                    jobs[id]!.lastActivity = Date()
                    jobs[id]!.heard = true
                    if let result = event.result { jobs[id]!.answer = .success(result) }
                    if let failure = event.failure { jobs[id]!.answer = .failure(failure) }
                    if jobs[id]!.answer != nil { jobs[id]!.wake.signal() }
                    return jobs[id]!.progress
                }
                if let text = event.progress { report?(text) }
            }
        }
        // The worker is gone (or about to be): reap it, then tell the listings still waiting.
        close()
        child.wait()
        registry?.unregister(child)
        lock.withLock {
            eventsClosed = true
            for job in jobs.values { job.wake.signal() }
        }
    }

    private func readErrors(from descriptor: Int32) {
        WorkerChannel.read(descriptor) { chunk in
            lock.withLock {
                errorBuffer.append(contentsOf: chunk)
                if errorBuffer.count > 64 * 1024 { errorBuffer.removeFirst(errorBuffer.count - 64 * 1024) }
            }
        }
    }
}
