import Foundation

/// Runs programs for the tests (git to build fixtures, the servers, gitmirror itself)
/// with posix_spawn and waitpid: nothing depends on a run loop reaping children.
public enum Shell {
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var combined: String { stdout + stderr }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var command: [String]
        public var output: Output
        public var description: String { "\(command.joined(separator: " ")) exited \(output.status): \(output.stderr)\(output.stdout)" }
    }

    /// An environment for git fixtures that ignores the machine's git configuration.
    public static var gitEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["GIT_CONFIG_NOSYSTEM"] = "1"
        environment["GIT_CONFIG_GLOBAL"] = "/dev/null"
        environment["GIT_AUTHOR_NAME"] = "Test"
        environment["GIT_AUTHOR_EMAIL"] = "test@example.invalid"
        environment["GIT_COMMITTER_NAME"] = "Test"
        environment["GIT_COMMITTER_EMAIL"] = "test@example.invalid"
        environment["GIT_TERMINAL_PROMPT"] = "0"
        return environment
    }

    @discardableResult
    public static func run(_ command: [String], environment: [String: String]? = nil,
                           input: String? = nil, check: Bool = true) throws -> Output {
        // Pipes are made close-on-exec under the spawn lock, so that no child
        // started by a parallel test inherits (and holds open) another's pipe.
        spawnLock.lock()
        let inPipe = try makePipe(), outPipe = try makePipe(), errPipe = try makePipe()
        let child: ChildProcess
        do {
            child = try ChildProcess(command, environment: environment ?? gitEnvironment,
                                     stdin: inPipe[0], stdout: outPipe[1], stderr: errPipe[1])
        } catch {
            spawnLock.unlock()
            throw error
        }
        close(inPipe[0]); close(outPipe[1]); close(errPipe[1])
        spawnLock.unlock()
        let collected = Collected()
        let group = DispatchGroup()
        group.enter()
        let outRead = outPipe[0], errRead = errPipe[0]
        Thread.detachNewThread { collected.setOut(readAll(outRead)); group.leave() }
        group.enter()
        Thread.detachNewThread { collected.setErr(readAll(errRead)); group.leave() }
        if let input {
            let bytes = Array(input.utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { write(inPipe[1], $0.baseAddress, $0.count) }
                if written <= 0 { break }
                offset += written
            }
        }
        close(inPipe[1])
        group.wait()
        close(outPipe[0]); close(errPipe[0])
        let status = child.wait()
        let output = Output(status: status, stdout: collected.out, stderr: collected.err)
        if check && output.status != 0 { throw Failure(command: command, output: output) }
        return output
    }

    static let spawnLock = NSLock()

    static func makePipe() throws -> [Int32] {
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else { throw TestError("pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(descriptors[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(descriptors[1], F_SETFD, FD_CLOEXEC)
        return descriptors
    }

    /// Starts a long-running program whose output goes to `log`.
    public static func start(_ command: [String], log: URL, environment: [String: String]? = nil) throws -> ChildProcess {
        spawnLock.lock()
        let logDescriptor = open(log.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        let nullDescriptor = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(logDescriptor); close(nullDescriptor); spawnLock.unlock() }
        return try ChildProcess(command, environment: environment ?? gitEnvironment, stdin: nullDescriptor, stdout: logDescriptor, stderr: logDescriptor)
    }

    static func readAll(_ descriptor: Int32) -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        return data
    }
}

/// A child process started with posix_spawnp.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let lock = NSLock()
    private var exitStatus: Int32?

    init(_ command: [String], environment: [String: String], stdin: Int32, stdout: Int32, stderr: Int32) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        let argv = command.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, command[0], &actions, nil, argv, envp)
        guard result == 0 else { throw TestError("cannot start \(command[0]): \(String(cString: strerror(result)))") }
        self.pid = pid
    }

    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        if exitStatus != nil { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            exitStatus = Self.decode(status)
            return false
        }
        return true
    }

    /// Waits for the process to end and returns its exit status (128+signal when killed).
    @discardableResult
    public func wait() -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        exitStatus = Self.decode(status)
        return exitStatus!
    }

    public func signal(_ signal: Int32) { kill(pid, signal) }

    static func decode(_ status: Int32) -> Int32 {
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}

private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var outData = Data(), errData = Data()
    func setOut(_ data: Data) { lock.lock(); outData = data; lock.unlock() }
    func setErr(_ data: Data) { lock.lock(); errData = data; lock.unlock() }
    var out: String { lock.lock(); defer { lock.unlock() }; return String(decoding: outData, as: UTF8.self) }
    var err: String { lock.lock(); defer { lock.unlock() }; return String(decoding: errData, as: UTF8.self) }
}
