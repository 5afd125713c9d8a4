import Foundation

/// A child process started with posix_spawn and reaped with waitpid: nothing
/// depends on a run loop noticing that a worker ended.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Pipes are created close-on-exec and children spawned under one lock, so
    /// that no child started by another thread inherits (and holds open) a pipe.
    private static let spawnLock = NSLock()

    public static func withSpawnLock<T>(_ body: () throws -> T) rethrows -> T {
        spawnLock.lock()
        defer { spawnLock.unlock() }
        return try body()
    }

    /// A close-on-exec pipe: (read end, write end). Call under `withSpawnLock`.
    public static func makePipe() throws -> (read: Int32, write: Int32) {
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else { throw SyncFailure(.internal, "pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(descriptors[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(descriptors[1], F_SETFD, FD_CLOEXEC)
        return (descriptors[0], descriptors[1])
    }

    /// Starts `command[0]` (looked up in PATH) with these descriptors as its stdin, stdout and stderr
    /// (and `inherited` ones at the numbers given). Call under `withSpawnLock`. `resetSignals` start with their default action (an ignored
    /// signal is otherwise inherited); `newProcessGroup` makes the child lead a group of its own,
    /// so that `signalGroup` reaches whatever it forks.
    public init(_ command: [String], environment: [String: String], stdin: Int32, stdout: Int32, stderr: Int32,
                resetSignals: [Int32] = [SIGINT, SIGTERM], newProcessGroup: Bool = false,
                inherited: [(source: Int32, target: Int32)] = []) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        // Descriptors the child (and what it starts) inherits at fixed numbers; dup2 clears close-on-exec.
        for descriptor in inherited { posix_spawn_file_actions_adddup2(&actions, descriptor.source, descriptor.target) }
        let argv = command.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in resetSignals { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var flags = Int32(POSIX_SPAWN_SETSIGDEF)
        if newProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, command[0], &actions, &attributes, argv, envp)
        guard result == 0 else { throw SyncFailure(.internal, "cannot start \(command[0]): \(String(cString: strerror(result)))") }
        self.pid = pid
    }

    /// This binary: what workers, and git's credential helper, are started as.
    public static var ownExecutable: URL {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return URL(fileURLWithPath: resolved)
        }
        return Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
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

    /// Waits for the process to end; its exit status, or 128 + the signal that killed it.
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

    /// Signals the child's whole process group (it must have been started with `newProcessGroup`).
    public func signalGroup(_ signal: Int32) { kill(-pid, signal) }

    static func decode(_ status: Int32) -> Int32 {
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }

    /// Reads a descriptor to its end.
    public static func readAll(_ descriptor: Int32, onChunk: (Data) -> Void = { _ in }) -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            let chunk = Data(buffer[0..<count])
            onChunk(chunk)
            data.append(chunk)
        }
        return data
    }
}
