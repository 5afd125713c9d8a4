import Foundation

/// Runs one worker process per network operation and kills it (SIGKILL) when it
/// passes its wall-clock limit or stays silent past its stall limit.
public struct WorkerSupervisor: Sendable {
    public let executable: URL
    public let arguments: [String]
    /// Set by the daemon, so that a shutdown can stop running workers.
    public let registry: WorkerRegistry?

    public init(executable: URL, arguments: [String] = ["__worker"], registry: WorkerRegistry? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.registry = registry
    }

    static let interrupted = SyncFailure(.timeout, "interrupted: gitmirror is shutting down and stopped this operation")

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
        let job: Data
        do {
            job = try JSONEncoder().encode(request)
        } catch {
            return .failure(SyncFailure(.internal, "cannot encode the worker's job: \(error)"))
        }
        let child: ChildProcess
        let input: Int32, output: Int32, errors: Int32
        do {
            (child, input, output, errors) = try ChildProcess.withSpawnLock {
                let stdin = try ChildProcess.makePipe(), stdout = try ChildProcess.makePipe(), stderr = try ChildProcess.makePipe()
                defer {
                    close(stdin.read)
                    close(stdout.write)
                    close(stderr.write)
                }
                // The worker watches that it is still this process's child; passing the pid
                // closes the race where the supervisor dies between spawn and the worker's first look.
                let child = try ChildProcess([executable.path] + arguments + ["--supervisor", String(getpid())], environment: Self.workerEnvironment(),
                                             stdin: stdin.read, stdout: stdout.write, stderr: stderr.write,
                                             // SIGINT stays as the supervisor has it (ignored while it handles Ctrl-C):
                                             // a worker between exec and its own handler must not die of it.
                                             resetSignals: [SIGTERM])
                return (child, stdin.write, stdout.read, stderr.read)
            }
        } catch {
            return .failure(SyncFailure(.internal, "cannot start the worker \(executable.path): \(error)"))
        }
        if let registry, !registry.register(child) { child.signal(SIGKILL) }
        defer { registry?.unregister(child) }
        let started = Date()
        let state = WorkerOutput()
        state.touch()
        Thread.detachNewThread { state.readEvents(from: output, progress: progress) }
        Thread.detachNewThread { state.readErrors(from: errors) }
        job.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(input, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { break }   // the worker died before reading its job; its exit tells why
                offset += written
            }
        }
        close(input)

        var killedFor: SyncFailure?
        while !state.finished(wait: 0.1) {
            let now = Date()
            if now.timeIntervalSince(started) > limits.timeout {
                killedFor = SyncFailure(.timeout, "gave up after \(formatDuration(limits.timeout)) (timeout); the operation was still running and was stopped")
            } else if now.timeIntervalSince(state.lastActivity) > limits.stall {
                killedFor = SyncFailure(.timeout, "the server sent nothing for \(formatDuration(limits.stall)) (stall_timeout); the connection was abandoned")
            }
            if killedFor != nil {
                child.signal(SIGKILL)
                break
            }
        }
        let status = child.wait()
        _ = state.finished(wait: 2)
        if let killedFor { return .failure(killedFor) }
        if registry?.isStopping == true && state.result == nil { return .failure(Self.interrupted) }
        if let failure = state.failure { return .failure(failure) }
        if let result = state.result { return .success(result) }
        let stderr = state.errorText.trimmingCharacters(in: .whitespacesAndNewlines)
        let how = status > 128 ? "was killed by signal \(status - 128)" : "exited with status \(status)"
        return .failure(SyncFailure(.internal, "the worker \(how) without a result" + (stderr.isEmpty ? "" : ": \(stderr.suffix(500))")))
    }
}

/// What the reader threads learn from a worker, shared with the waiting thread.
private final class WorkerOutput: @unchecked Sendable {
    private let lock = NSCondition()
    private var _lastActivity = Date()
    private var openStreams = 2
    private(set) var result: WorkerResult?
    private(set) var failure: SyncFailure?
    private var errorBuffer = Data()

    var lastActivity: Date { lock.lock(); defer { lock.unlock() }; return _lastActivity }
    var errorText: String { lock.lock(); defer { lock.unlock() }; return String(decoding: errorBuffer, as: UTF8.self) }

    func touch() {
        lock.lock()
        _lastActivity = Date()
        lock.unlock()
    }

    /// Waits up to `seconds` for both streams to close; true once they have.
    func finished(wait seconds: TimeInterval) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if openStreams == 0 { return true }
        _ = lock.wait(until: Date().addingTimeInterval(seconds))
        return openStreams == 0
    }

    private func streamClosed() {
        lock.lock()
        openStreams -= 1
        lock.broadcast()
        lock.unlock()
    }

    func readEvents(from descriptor: Int32, progress: (String) -> Void) {
        var buffer = Data()
        let decoder = JSONDecoder()
        _ = ChildProcess.readAll(descriptor) { chunk in
            touch()
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                guard let event = try? decoder.decode(WorkerEvent.self, from: line) else { continue }
                if let text = event.progress { progress(text) }
                lock.lock()
                if let result = event.result { self.result = result }
                if let failure = event.failure { self.failure = failure }
                lock.unlock()
            }
        }
        Glibc.close(descriptor)
        streamClosed()
    }

    func readErrors(from descriptor: Int32) {
        _ = ChildProcess.readAll(descriptor) { chunk in
            lock.lock()
            if errorBuffer.count < 64 * 1024 { errorBuffer.append(chunk) }
            lock.unlock()
        }
        Glibc.close(descriptor)
        streamClosed()
    }
}
