import Foundation

/// One writer per cache: an flock on a file next to the cache (released by the
/// kernel when the holder dies, so a killed process never leaves it stuck),
/// mirrored by a lease row in SQLite that `status` can show.
public final class RepositoryLock {
    private let descriptor: Int32
    public let path: String
    /// When this process took the lock: anything lock-like in the cache older than this was left by a dead process.
    public let acquiredAt = Date()

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit { release() }

    public enum Outcome {
        case acquired(RepositoryLock)
        /// Still held by another process after waiting; its pid when known.
        case busy(holder: Int32?)
    }

    /// Takes the lock, waiting up to `wait` seconds for a holder to finish.
    /// Waits up to `wait` for the lock; `giveUp` ends the wait early (a shutdown) with `.busy`.
    public static func acquire(path: String, wait: TimeInterval, giveUp: () -> Bool = { false }) throws -> Outcome {
        let folder = (path as NSString).deletingLastPathComponent
        // cache/ and the lock file are gitmirror's own: private, and never reached through a link
        // (a planted link would have this process truncate its target).
        try OwnedPath.check(folder, directory: true)
        if (try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])) == nil {
            throw LocalFault.failure(errno: EACCES, path: folder, doing: "create the cache folder")
        }
        try OwnedPath.directory(folder)
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            if errno == ELOOP { try OwnedPath.check(path, directory: false) }
            throw LocalFault.failure(errno: errno, path: path, doing: "open the lock file")
        }
        let deadline = Date().addingTimeInterval(wait)
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                close(descriptor)
                throw SyncFailure(.internal, "cannot lock \(path): \(String(cString: strerror(errno)))")
            }
            if Date() >= deadline || giveUp() {
                let holder = (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                close(descriptor)
                return .busy(holder: holder)
            }
            usleep(100_000)
        }
        let pid = "\(getpid())\n"
        ftruncate(descriptor, 0)
        _ = pid.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        return .acquired(RepositoryLock(descriptor: descriptor, path: path))
    }

    private var released = false

    public func release() {
        guard !released else { return }
        released = true
        ftruncate(descriptor, 0)
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
