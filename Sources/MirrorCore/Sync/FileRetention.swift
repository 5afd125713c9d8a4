import Foundation
// On Linux `struct stat` reaches Swift through Dispatch's C module, which MemberImportVisibility wants named.
#if canImport(CDispatch)
import CDispatch
#endif

/// The files gitmirror keeps beside its database, pruned as `retention:` says (after each sync and
/// hourly by the daemon): damaged caches in `quarantine/` (kept unless `retention.quarantine` is set:
/// one may hold a backup ref that could not be carried over) and LFS objects in `lfs/objects` that no
/// push used for `retention.lfs` (a push touches each object it uses, so one in use is never old).
/// Only what gitmirror itself writes there is removed; a link or a name it would not write is left.
public enum FileRetention {
    public struct Pruned: Equatable, Sendable {
        public var quarantined = 0
        public var lfsObjects = 0
        public var bytes = 0
    }

    @discardableResult
    public static func prune(stateDirectory: URL, retention: Retention, now: Date = Date()) -> Pruned {
        var pruned = Pruned()
        let files = FileManager.default
        if let keep = retention.quarantine {
            let folder = stateDirectory.appendingPathComponent("quarantine").path
            for name in (try? files.contentsOfDirectory(atPath: folder)) ?? [] where name.hasSuffix(".git") {
                let path = folder + "/" + name
                guard OwnedPath.problem(path, directory: true) == nil, let changed = modified(path),
                      now.timeIntervalSince(changed) > keep else { continue }
                let size = bytes(under: path)
                if (try? files.removeItem(atPath: path)) != nil {
                    pruned.quarantined += 1
                    pruned.bytes += size
                }
            }
        }
        if let keep = retention.lfs {
            // git-lfs's layout: objects/ab/cd/<sha256>.
            let store = stateDirectory.appendingPathComponent("lfs/objects").path
            guard OwnedPath.problem(store, directory: true) == nil else { return pruned }
            for first in (try? files.contentsOfDirectory(atPath: store)) ?? [] where first.utf8.count == 2 {
                for second in (try? files.contentsOfDirectory(atPath: store + "/" + first)) ?? [] where second.utf8.count == 2 {
                    let folder = store + "/" + first + "/" + second
                    for name in (try? files.contentsOfDirectory(atPath: folder)) ?? [] where name.utf8.count == 64 && name.hasPrefix(first + second) {
                        let path = folder + "/" + name
                        var status = stat()
                        guard lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG,
                              now.timeIntervalSince1970 - Double(status.st_mtim.tv_sec) > keep, unlink(path) == 0 else { continue }
                        pruned.lfsObjects += 1
                        pruned.bytes += Int(status.st_size)
                    }
                    rmdir(folder)
                }
                rmdir(store + "/" + first)
            }
        }
        return pruned
    }

    /// A push is about to use this stored object: it is fresh again for `retention.lfs`.
    public static func touch(_ url: URL) {
        _ = utimes(url.path, nil)
    }

    static func modified(_ path: String) -> Date? {
        FileStatus(path)?.modified
    }

    static func bytes(under path: String) -> Int {
        guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total = 0
        for case let name as String in walker {
            total += FileStatus(path + "/" + name)?.size ?? 0
        }
        return total
    }
}
