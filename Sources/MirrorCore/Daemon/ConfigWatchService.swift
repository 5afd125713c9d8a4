import AsyncAlgorithms
import Foundation
// On Linux `struct stat` reaches Swift through Dispatch's C module, which MemberImportVisibility wants named.
#if canImport(CDispatch)
import CDispatch
#endif
import ServiceLifecycle

/// Reloads the configuration when its file changes, as on SIGHUP. Kubernetes updates a mounted
/// ConfigMap by swapping a `..data` symlink, and nobody sends a signal; an edit in place is seen too.
/// What is compared is the file the path leads to now (through every link): its identity, size and time.
struct ConfigWatchService: Service {
    let file: URL
    let reload: @Sendable () async -> Result<Config, any Error>
    var every: Duration = .seconds(2)

    static func fingerprint(_ file: URL) -> String? {
        var info = stat()
        guard stat(file.path, &info) == 0 else { return nil }
        let resolved = (try? FileManager.default.destinationOfSymbolicLink(atPath: file.path)) ?? ""
        return "\(file.resolvingSymlinksInPath().path) \(resolved) \(info.st_dev) \(info.st_ino) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    func run() async throws {
        var seen = Self.fingerprint(file)
        for await _ in AsyncTimerSequence(interval: every, clock: .continuous).cancelOnGracefulShutdown() {
            // A file that is gone for a moment (mid-swap) is not a change: wait for the new one.
            guard let now = Self.fingerprint(file), now != seen else { continue }
            seen = now
            _ = await reload()
        }
    }
}
