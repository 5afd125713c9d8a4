import Foundation
import Synchronization

/// Workers that finished a job and wait for the next, by trust store.
final class WorkerPool: Sendable {
    private let idle = Mutex<[PooledWorker]>([])

    /// An idle worker for this trust store that is still running; workers that exited are reaped.
    func take(trust: String) -> PooledWorker? {
        let (worker, gone) = idle.withLock { idle -> (PooledWorker?, [PooledWorker]) in
            var gone: [PooledWorker] = []
            idle.removeAll { worker in
                let expired = !worker.child.isRunning || worker.channel.isClosed || worker.idleFor > Workers.idleExit - 2
                if expired { gone.append(worker) }
                return expired
            }
            let index = idle.lastIndex { $0.trust == trust }
            return (index.map { idle.remove(at: $0) }, gone)
        }
        for worker in gone { worker.close() }
        return worker
    }

    /// How many workers for this trust store wait (some may be starting still).
    func idleCount(trust: String) -> Int { idle.withLock { $0.filter { $0.trust == trust }.count } }

    /// A worker started ahead of its first job. It goes behind every worker already waiting, since
    /// `take` serves from the back: one that has served a job, or was started earlier, is ready sooner
    /// than one whose process is still starting (a fetch handed the newest of four prestarted workers
    /// waited ~60 ms for it while an older one sat ready).
    func add(_ worker: PooledWorker) { idle.withLock { $0.insert(worker, at: 0) } }

    /// The processes waiting in the pool.
    var idleProcesses: Set<pid_t> { idle.withLock { Set($0.map(\.child.pid)) } }

    /// Jobs one worker serves before it is retired: a daemon that is never idle still
    /// starts fresh processes now and then, so nothing libgit2 keeps can grow for a year.
    static let jobsPerWorker = 200

    func put(_ worker: PooledWorker) {
        guard worker.finishedJob() < Self.jobsPerWorker else {
            worker.close()
            return
        }
        idle.withLock { $0.append(worker) }
    }
}

/// One worker process that runs one job at a time, and the pipes to it.
final class PooledWorker: Sendable {
    let child: ChildProcess
    let trust: String
    let channel = WorkerChannel()
    private let input: Int32
    private let registry: WorkerRegistry?
    private struct State {
        var idleSince = Date()
        var jobs = 0
        var inputOpen = true
    }
    private let state = Mutex(State())

    init(child: ChildProcess, input: Int32, trust: String, registry: WorkerRegistry?) {
        self.child = child
        self.input = input
        self.trust = trust
        self.registry = registry
    }

    var idleFor: TimeInterval { state.withLock { Date().timeIntervalSince($0.idleSince) } }

    /// Counts the job just finished, from which the worker is idle; returns how many it has served.
    func finishedJob() -> Int {
        state.withLock { state in
            state.idleSince = Date()
            state.jobs += 1
            return state.jobs
        }
    }

    enum Operation {
        case finished(Wire.Answer)
        /// The worker was gone before it said anything about this job.
        case lostBeforeStart
        case died
        case killed(SyncFailure)
    }

    /// Sends one job and waits for its answer within the limits: woken by the answer or the worker's end,
    /// or when the limits would be passed (they are checked again then: a note may have come meanwhile).
    func operate(_ line: Data, limits: Workers.Limits, progress: @escaping @Sendable (JobNote) -> Void) -> Operation {
        let started = Date()
        channel.begin(progress: progress)
        guard writeAll(input, line) else { return channel.heardFromJob ? .died : .lostBeforeStart }
        while true {
            let lastActivity = channel.lastActivity
            if let failure = Workers.overrun(limits, started: started, lastActivity: lastActivity) {
                child.signalGroup(SIGKILL)
                return .killed(failure)
            }
            let deadline = min(started.addingTimeInterval(limits.timeout), lastActivity.addingTimeInterval(limits.stall))
            switch channel.wait(until: deadline.addingTimeInterval(0.01)) {
            case .answered(let answer):
                return .finished(answer)
            case .closed:
                return channel.heardFromJob ? .died : .lostBeforeStart
            case .pending:
                continue
            }
        }
    }

    private func closeInput() {
        let open = state.withLock { state in
            defer { state.inputOpen = false }
            return state.inputOpen
        }
        if open { Glibc.close(input) }
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

/// What the reader threads learn from one worker, job by job, shared with the waiting thread. Notes
/// go to the job's caller from a queue of the job's own, so that a slow caller never holds up the
/// reader (whose silence would look like a stalled job).
final class WorkerChannel: Sendable {
    enum Outcome {
        case pending
        case answered(Wire.Answer)
        case closed
    }

    private struct State {
        var lastActivity = Date()
        var answer: Wire.Answer?
        var heard = false
        var openStreams = 2
        var eventsClosed = false
        var notes: JobNotes?
        var errorBuffer = Data()
    }
    private let state = Guarded(State())

    var lastActivity: Date { state.withLock { $0.lastActivity } }
    var errorText: String { state.withLock { String(decoding: $0.errorBuffer, as: UTF8.self) } }
    var isClosed: Bool { state.withLock { $0.eventsClosed } }
    /// Whether the worker said anything (a note or the answer) since the current job was sent.
    var heardFromJob: Bool { state.withLock { $0.heard } }

    func begin(progress: @escaping @Sendable (JobNote) -> Void) {
        state.withLock { state in
            state.answer = nil
            state.heard = false
            state.lastActivity = Date()
            state.notes = JobNotes(progress)
        }
    }

    /// Waits until `deadline` at most for the current job's answer or the worker's end; the job's notes
    /// have all been handed over when it returns an answer.
    func wait(until deadline: Date) -> Outcome {
        let (outcome, notes) = state.wait(until: deadline, for: { $0.answer != nil || $0.eventsClosed }) { state, _ -> (Outcome, JobNotes?) in
            if let answer = state.answer { return (.answered(answer), state.notes) }
            return (state.eventsClosed ? .closed : .pending, nil)
        }
        notes?.drain()
        return outcome
    }

    func waitClosed(_ seconds: TimeInterval) -> Bool {
        state.wait(until: Date().addingTimeInterval(seconds), for: { $0.openStreams == 0 }) { _, closed in closed }
    }

    func readEvents(from descriptor: Int32) {
        EventReader.read(descriptor) { header, line in
            state.withLock(wake: header.done == true || header.failure != nil) { state in
                state.lastActivity = Date()
                state.heard = true
                if let note = header.note { state.notes?.hand(note) }
                if header.done == true { state.answer = .result(line: line) }
                if let failure = header.failure { state.answer = .failure(failure) }
            }
        } chunk: {
            state.withLock { state in
                state.lastActivity = Date()
                state.heard = true
            }
        }
        state.withLock(wake: true) { state in
            state.eventsClosed = true
            state.openStreams -= 1
        }
    }

    func readErrors(from descriptor: Int32) {
        EventReader.readChunks(descriptor) { chunk in
            state.withLock { state in
                state.errorBuffer.append(contentsOf: chunk)
                if state.errorBuffer.count > 64 * 1024 { state.errorBuffer.removeFirst(state.errorBuffer.count - 64 * 1024) }
            }
        }
        state.withLock(wake: true) { $0.openStreams -= 1 }
    }
}

/// A job's notes, handed to its caller in order on a queue of their own.
final class JobNotes: Sendable {
    private let queue = DispatchQueue(label: "gitmirror.job-notes")
    private let progress: @Sendable (JobNote) -> Void

    init(_ progress: @escaping @Sendable (JobNote) -> Void) { self.progress = progress }

    func hand(_ note: JobNote) { queue.async { [progress] in progress(note) } }

    /// Waits until every note handed so far has been delivered.
    func drain() { queue.sync {} }
}

/// A worker's stdout, read line by line as events.
enum EventReader {
    /// Calls `event` for every event line (its header, and the line for the result), `chunk` for every
    /// read; closes the descriptor at the end of the stream.
    static func read(_ descriptor: Int32, event: (Wire.EventHeader, Data) -> Void, chunk: () -> Void) {
        // Only the bytes that came are searched for the end of a line: a result of 20,000 refs is one
        // line of megabytes, and scanning it again at every chunk was most of a no-op sync's time.
        var buffer: [UInt8] = []
        let decoder = JSONDecoder()
        readChunks(descriptor) { bytes in
            chunk()
            var searched = buffer.count
            buffer.append(contentsOf: bytes)
            var start = 0
            while let newline = buffer[searched...].firstIndex(of: 0x0A) {
                let line = Data(buffer[start..<newline])
                start = newline + 1
                searched = start
                guard let header = try? decoder.decode(Wire.EventHeader.self, from: line) else { continue }
                event(header, line)
            }
            if start > 0 { buffer.removeFirst(start) }
        }
    }

    /// Reads until end of file, chunk by chunk, then closes the descriptor.
    static func readChunks(_ descriptor: Int32, _ body: (ArraySlice<UInt8>) -> Void) {
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
