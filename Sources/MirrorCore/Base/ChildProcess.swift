import Foundation
import Synchronization

/// A child process started with posix_spawn and reaped with waitpid: nothing
/// depends on a run loop noticing that a worker ended.
///
/// The process is reaped only under `reaped`'s lock, and signalled only under it while not yet
/// reaped: until then the pid is ours (a zombie keeps it), so a signal never reaches a stranger that
/// was given the recycled pid. Waiting itself (`waitid` with `WNOWAIT`) holds no lock.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// The exit status, once reaped.
    private let reaped = Mutex<Int32?>(nil)

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
    // Never inlined: where a caller saw the allocation, Swift 6.3.1's optimizer (release builds) inlined
    // the object's destruction too and then failed its own ownership check on the Mutex inside
    // ("Found ownership error?!" in GitTransfer.runGit, signal 6).
    @inline(never)
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
        // Nothing else crosses over, close-on-exec or not: a descriptor another library opened without
        // it (the daemon's listening socket, an HTTP client's connection) would otherwise live on in every
        // worker and git process, keeping the port bound after the daemon stopped.
        #if os(Linux)
        _ = spawnCloseFrom(&actions, max(2, inherited.map(\.target).max() ?? 2) + 1)
        #endif
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
        reaped.withLock { exitStatus in
            if exitStatus != nil { return false }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                exitStatus = Self.decode(status)
                return false
            }
            return true
        }
    }

    /// Waits for the process to end; its exit status, or 128 + the signal that killed it.
    @discardableResult
    public func wait() -> Int32 {
        if let status = reaped.withLock({ $0 }) { return status }
        // Block until it has exited, leaving it a zombie (its pid still ours); then reap under the lock.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        return reaped.withLock { exitStatus in
            if let exitStatus { return exitStatus }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            exitStatus = Self.decode(status)
            return exitStatus!
        }
    }

    /// Signals the child, unless it was already reaped.
    public func signal(_ signal: Int32) {
        reaped.withLock { if $0 == nil { kill(pid, signal) } }
    }

    /// Signals the child's whole process group (it must have been started with `newProcessGroup`).
    /// The group outlives its leader only while the leader is unreaped, so the same rule holds.
    public func signalGroup(_ signal: Int32) {
        reaped.withLock { if $0 == nil { kill(-pid, signal) } }
    }

    /// Runs a command to its end: `input` on its stdin, its stdout and stderr collected. Past `timeout`
    /// it is killed (SIGKILL) and its status says so. The one place that spawns with pipes and waits.
    public static func run(_ command: [String], environment: [String: String], input: Data? = nil,
                           timeout: TimeInterval? = nil) throws -> (status: Int32, output: Data, errors: Data) {
        let (child, inWrite, outRead, errRead) = try withSpawnLock {
            let inPipe = try makePipe(), outPipe = try makePipe(), errPipe = try makePipe()
            defer { close(inPipe.read); close(outPipe.write); close(errPipe.write) }
            let child = try ChildProcess(command, environment: environment, stdin: inPipe.read, stdout: outPipe.write, stderr: errPipe.write)
            return (child, inPipe.write, outPipe.read, errPipe.read)
        }
        defer { close(outRead); close(errRead) }
        let streams = concurrently(3, deadline: timeout.map { Date().addingTimeInterval($0) }, atDeadline: { child.signal(SIGKILL) }) { index -> Data in
            switch index {
            case 0:
                if let input {
                    input.withUnsafeBytes { bytes in
                        var offset = 0
                        while offset < bytes.count {
                            let written = write(inWrite, bytes.baseAddress! + offset, bytes.count - offset)
                            if written < 0 && errno == EINTR { continue }
                            if written <= 0 { break }
                            offset += written
                        }
                    }
                }
                close(inWrite)
                return Data()
            case 1: return readAll(outRead)
            default: return readAll(errRead)
            }
        }
        return (child.wait(), streams[1], streams[2])
    }

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

#if os(Linux)
/// glibc (2.34+) declares it only for _GNU_SOURCE, which Swift's Glibc module is not built with.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func spawnCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32
#endif

/// Writes all of `bytes` to `descriptor` (retrying short writes and EINTR); false when the other end is gone.
func writeAll(_ descriptor: Int32, _ bytes: some ContiguousBytes) -> Bool {
    bytes.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }
}
