import Foundation
// On Linux `struct stat` reaches Swift through Dispatch's C module, which MemberImportVisibility wants named.
#if canImport(CDispatch)
import CDispatch
#endif

/// Plain words for a cache (or state_dir) this process may not write: who owns it and who we are.
enum CacheAccess {
    static func userName(_ uid: uid_t) -> String {
        getpwuid(uid).map { String(cString: $0.pointee.pw_name) } ?? "uid \(uid)"
    }

    /// "cannot write /x/cache/app.git: it belongs to alice (mode 755) and gitmirror runs as bob".
    static func describe(_ path: String) -> String {
        var candidate = path
        var info = stat()
        // The nearest part of the path that exists is the one that refuses us.
        while stat(candidate, &info) != 0, candidate != "/", !candidate.isEmpty {
            candidate = (candidate as NSString).deletingLastPathComponent
        }
        let me = userName(geteuid())
        guard stat(candidate, &info) == 0 else { return "cannot write \(path) (permission denied; gitmirror runs as \(me))" }
        let mode = String(info.st_mode & 0o7777, radix: 8)
        return "cannot write \(path): \(candidate) belongs to \(userName(info.st_uid)) (mode \(mode)) and gitmirror runs as \(me)"
    }
}

/// A failed system call on gitmirror's own files, classed by what failed.
enum LocalFault {
    static func failure(errno code: Int32, path: String, doing what: String) -> SyncFailure {
        switch code {
        case EACCES, EPERM, EROFS:
            return SyncFailure(.config, "cannot \(what): \(CacheAccess.describe(path)); run gitmirror as the user who owns state_dir, or give that user access to it")
        case ENOSPC, EDQUOT:
            return SyncFailure(.internal, "cannot \(what): no space left on the device holding \(path) (state_dir); free space there, then sync again")
        default:
            return SyncFailure(.internal, "cannot \(what) \(path): \(String(cString: strerror(code)))")
        }
    }
}
