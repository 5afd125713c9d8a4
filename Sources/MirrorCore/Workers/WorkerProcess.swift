import Foundation
import Synchronization

/// How a worker process runs one kind of job: reads its input from the job's line, runs it, and says
/// how it ended. The handlers themselves are the worker side's (Sync/Worker/Worker.swift).
public struct JobHandler: Sendable {
    let name: String
    let perform: @Sendable (_ line: Data, _ reporter: JobReporter) -> Void

    public static func handling<J: Job>(_ type: J.Type, _ body: @escaping @Sendable (J, JobReporter) -> Result<J.Result, SyncFailure>) -> JobHandler {
        JobHandler(name: J.name) { line, reporter in
            let job: J
            do {
                job = try JSONDecoder().decode(Wire.JobLine<J>.self, from: line).input
            } catch {
                reporter.finish(Result<J.Result, SyncFailure>.failure(SyncFailure(.internal, "the worker could not read its \(J.name) job: \(error)")))
                return
            }
            reporter.finish(body(job, reporter))
        }
    }
}

/// A job's voice in the worker: its notes and its one answer, tagged with its id.
public struct JobReporter: Sendable {
    let id: Int?

    public func note(_ note: JobNote) { WorkerProcess.emit(Wire.EventLine<Bool>(id: id, note: note)) }

    func finish<R: Encodable>(_ outcome: Result<R, SyncFailure>) {
        switch outcome {
        case .success(let result): WorkerProcess.emit(Wire.EventLine(id: id, done: true, result: result))
        case .failure(let failure): WorkerProcess.emit(Wire.EventLine<R>(id: id, failure: failure))
        }
    }
}

/// The worker process: one libgit2 operation at a time in a short-lived process (or several listings,
/// each on a thread), so that a hung server or a looping libgit2 can be killed without harm. Jobs come
/// as lines on stdin, events go as lines to stdout.
public enum WorkerProcess {
    /// Serves jobs until stdin ends or no job came for `idleExit` seconds.
    public static func serve(_ handlers: [JobHandler], supervisor: Int32? = nil, idleExit: TimeInterval? = nil) -> Int32 {
        // Ctrl-C reaches the whole process group; the supervisor decides what stops
        // (and records it), so a worker leaves SIGINT to it.
        signal(SIGINT, SIG_IGN)
        // A server that hangs up mid-push must be an error from send(), not a dead worker.
        signal(SIGPIPE, SIG_IGN)
        watchParent(supervisor ?? getppid())
        let byName = Dictionary(handlers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let decoder = JSONDecoder()
        // stdin is read here without stdio's buffer: several jobs may arrive in one read, and each
        // must start before the next wait for input.
        var pending: [UInt8] = []
        // How far `pending` is known to hold no newline: a job of 20,000 updates is one line of megabytes.
        var searched = 0
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            guard let newline = pending[searched...].firstIndex(of: 0x0A) else {
                searched = pending.count
                if let idleExit, !awaitInput(idleExit: idleExit) { return 0 }
                let count = read(STDIN_FILENO, &chunk, chunk.count)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 {
                    // End of input: the supervisor lets this worker go; jobs under way still answer.
                    concurrent.waitUntilIdle()
                    return 0
                }
                pending.append(contentsOf: chunk[0..<count])
                continue
            }
            let line = Data(pending[..<newline])
            pending.removeSubrange(...newline)
            searched = 0
            if line.isEmpty { continue }
            guard let header = try? decoder.decode(Wire.JobHeader.self, from: line), let handler = byName[header.job] else {
                emit(Wire.EventLine<Bool>(failure: SyncFailure(.internal, "the worker could not read its job (\(line.prefix(80).count) bytes that name no job it knows)")))
                return 1
            }
            let reporter = JobReporter(id: header.id)
            if header.id != nil {
                concurrent.start { handler.perform(line, reporter) }
            } else {
                handler.perform(line, reporter)
            }
        }
    }

    /// The jobs with an id, each on a thread of its own.
    static let concurrent = ConcurrentJobs()

    /// Whether a job (or the end of input) arrives before the worker has been idle for `idleExit`:
    /// jobs still running on their threads keep the worker busy.
    static func awaitInput(idleExit: TimeInterval) -> Bool {
        var idleSince = Date()
        while true {
            if inputArrives(within: min(idleExit, 1)) { return true }
            if concurrent.running > 0 {
                idleSince = Date()
            } else if Date().timeIntervalSince(idleSince) >= idleExit {
                return false
            }
        }
    }

    /// Whether stdin has something to read (a job, or its end) within `seconds`.
    static func inputArrives(within seconds: TimeInterval) -> Bool {
        var descriptor = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&descriptor, 1, Int32(seconds * 1000))
            if ready < 0 && errno == EINTR { continue }
            return ready != 0
        }
    }

    /// A worker whose supervisor died (even by SIGKILL) must not hang on alone:
    /// it exits as soon as it is re-parented — or at once, when the supervisor
    /// was already gone by the time the worker started.
    static func watchParent(_ parent: Int32) {
        if getppid() != parent { leave() }
        Thread.detachNewThread {
            while getppid() == parent { usleep(250_000) }
            leave()
        }
    }

    /// Exits, taking along what this worker started (a git push on a hung server would stay forever):
    /// a worker leads its own process group, so the group is exactly that.
    static func leave() -> Never {
        if getpgrp() == getpid() {
            signal(SIGTERM, SIG_IGN)
            kill(0, SIGTERM)
        }
        _exit(3)
    }

    /// One line per event; the lock keeps the lines of jobs running side by side whole.
    static func emit<R: Encodable>(_ event: Wire.EventLine<R>) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        guard var data = try? encoder.encode(event) else { return }
        data.append(0x0A)
        output.withLock { _ in FileHandle.standardOutput.write(data) }
    }

    private static let output = Mutex(())
}

/// Jobs running side by side in one worker, each on a thread of its own.
final class ConcurrentJobs: Sendable {
    private let count = Guarded(0)

    var running: Int { count.withLock { $0 } }

    func start(_ job: @escaping @Sendable () -> Void) {
        count.withLock { $0 += 1 }
        // On a reused thread with libgit2's stack (BlockingThreads).
        BlockingThreads.shared.run { [count] in
            job()
            count.withLock(wake: true) { $0 -= 1 }
        }
    }

    func waitUntilIdle() {
        count.wait(for: { $0 == 0 }) { _, _ in }
    }
}
