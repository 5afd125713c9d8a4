import Foundation

/// Runs one worker process per network operation and kills it (SIGKILL) when it
/// passes its wall-clock limit or stays silent past its stall limit.
public struct WorkerSupervisor: Sendable {
    public let executable: URL
    public let arguments: [String]

    public init(executable: URL, arguments: [String] = ["__worker"]) {
        self.executable = executable
        self.arguments = arguments
    }

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

    public func run(_ request: WorkerRequest, limits: Limits, progress: @escaping @Sendable (String) -> Void = { _ in }) -> Result<WorkerResult, SyncFailure> {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = Self.workerEnvironment()
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        let state = WorkerOutput()
        do {
            try process.run()
        } catch {
            return .failure(SyncFailure(.internal, "cannot start the worker \(executable.path): \(error)"))
        }
        let started = Date()
        state.touch()
        let outputReader = Thread { state.readEvents(from: output.fileHandleForReading, progress: progress) }
        let errorReader = Thread { state.readErrors(from: errors.fileHandleForReading) }
        outputReader.start()
        errorReader.start()
        do {
            let job = try JSONEncoder().encode(request)
            try input.fileHandleForWriting.write(contentsOf: job)
        } catch {
            // The worker died before reading its job; its exit tells why.
        }
        try? input.fileHandleForWriting.close()

        var killedFor: SyncFailure?
        while !state.finished(wait: 0.1) {
            let now = Date()
            if now.timeIntervalSince(started) > limits.timeout {
                killedFor = SyncFailure(.timeout, "gave up after \(formatDuration(limits.timeout)) (timeout); the operation was still running and was stopped")
            } else if now.timeIntervalSince(state.lastActivity) > limits.stall {
                killedFor = SyncFailure(.timeout, "the server sent nothing for \(formatDuration(limits.stall)) (stall_timeout); the connection was abandoned")
            }
            if killedFor != nil {
                kill(process.processIdentifier, SIGKILL)
                break
            }
        }
        process.waitUntilExit()
        _ = state.finished(wait: 2)
        if let killedFor { return .failure(killedFor) }
        if let failure = state.failure { return .failure(failure) }
        if let result = state.result { return .success(result) }
        let stderr = state.errorText.trimmingCharacters(in: .whitespacesAndNewlines)
        let how = process.terminationReason == .uncaughtSignal ? "was killed by signal \(process.terminationStatus)" : "exited with status \(process.terminationStatus)"
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

    private func close() {
        lock.lock()
        openStreams -= 1
        lock.broadcast()
        lock.unlock()
    }

    func readEvents(from handle: FileHandle, progress: (String) -> Void) {
        var buffer = Data()
        let decoder = JSONDecoder()
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
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
        close()
    }

    func readErrors(from handle: FileHandle) {
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            lock.lock()
            if errorBuffer.count < 64 * 1024 { errorBuffer.append(chunk) }
            lock.unlock()
        }
        close()
    }
}
