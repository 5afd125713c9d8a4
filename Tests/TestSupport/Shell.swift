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
        let result = try ChildProcess.run(command, environment: environment ?? gitEnvironment, input: input.map { Data($0.utf8) })
        let output = Output(status: result.status, stdout: String(decoding: result.output, as: UTF8.self),
                            stderr: String(decoding: result.errors, as: UTF8.self))
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
