import Foundation
import MirrorCore

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
        let (child, inPipe, outPipe, errPipe) = try ChildProcess.withSpawnLock {
            let inPipe = try ChildProcess.makePipe(), outPipe = try ChildProcess.makePipe(), errPipe = try ChildProcess.makePipe()
            defer { close(inPipe.read); close(outPipe.write); close(errPipe.write) }
            let child = try ChildProcess(command, environment: environment ?? gitEnvironment,
                                         stdin: inPipe.read, stdout: outPipe.write, stderr: errPipe.write)
            return (child, inPipe, outPipe, errPipe)
        }
        let collected = Collected()
        let group = DispatchGroup()
        group.enter()
        let outRead = outPipe.read, errRead = errPipe.read
        Thread.detachNewThread { collected.setOut(ChildProcess.readAll(outRead)); group.leave() }
        group.enter()
        Thread.detachNewThread { collected.setErr(ChildProcess.readAll(errRead)); group.leave() }
        if let input {
            let bytes = Array(input.utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { write(inPipe.write, $0.baseAddress, $0.count) }
                if written <= 0 { break }
                offset += written
            }
        }
        close(inPipe.write)
        group.wait()
        close(outPipe.read); close(errPipe.read)
        let status = child.wait()
        let output = Output(status: status, stdout: collected.out, stderr: collected.err)
        if check && output.status != 0 { throw Failure(command: command, output: output) }
        return output
    }

    /// Starts a long-running program whose output goes to `log`.
    public static func start(_ command: [String], log: URL, environment: [String: String]? = nil) throws -> ChildProcess {
        try ChildProcess.withSpawnLock {
            let logDescriptor = open(log.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            let nullDescriptor = open("/dev/null", O_RDONLY | O_CLOEXEC)
            defer { close(logDescriptor); close(nullDescriptor) }
            // Its own process group: servers that fork (git daemon runs git-daemon, fcgiwrap -c 4
            // preforks) are stopped whole, and a test can send Ctrl-C as a terminal would.
            return try ChildProcess(command, environment: environment ?? gitEnvironment, stdin: nullDescriptor, stdout: logDescriptor,
                                    stderr: logDescriptor, newProcessGroup: true)
        }
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
