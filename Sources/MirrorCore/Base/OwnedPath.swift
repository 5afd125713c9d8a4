import Foundation
#if canImport(CDispatch)
import CDispatch
#endif

/// What gitmirror owns under `state_dir` — the folder itself, `cache/`, `quarantine/`, the caches,
/// the lock files, the database — is made private (folders 0700, files 0600) and is never reached
/// through a symbolic link: another local user who could plant a link must not make gitmirror
/// fetch into, move into or truncate something of theirs. A link where gitmirror expects its own
/// file or folder is refused with what to do, and nothing is written through it.
public enum OwnedPath {
    /// Why `path` cannot be used as one of gitmirror's own: a symbolic link, or not the kind expected.
    public static func problem(_ path: String, directory: Bool) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }   // absent: it will be created
        let kind = info.st_mode & S_IFMT
        if kind == S_IFLNK {
            return "\(path) is a symbolic link; gitmirror never follows links in what it owns under state_dir (another user could point it anywhere). Remove the link (and put back the \(directory ? "folder" : "file") it stood for) before syncing again"
        }
        if directory && kind != S_IFDIR { return "\(path) is not a folder; gitmirror keeps its own folder there" }
        if !directory && kind != S_IFREG { return "\(path) is not a regular file; gitmirror keeps its own file there" }
        return nil
    }

    /// Refuses a link or a wrong kind at `path` as a `config` failure.
    public static func check(_ path: String, directory: Bool) throws(SyncFailure) {
        if let problem = problem(path, directory: directory) { throw SyncFailure(.config, problem) }
    }

    /// Makes `path` a private folder of gitmirror's (0700), or checks the one there: a link is refused,
    /// and one whose permissions are wider is narrowed to 0700.
    public static func directory(_ path: String) throws(SyncFailure) {
        try check(path, directory: true)
        if mkdir(path, 0o700) != 0 {
            guard errno == EEXIST else { throw SyncFailure(.config, "cannot create \(path): \(String(cString: strerror(errno)))") }
            try check(path, directory: true)   // a link planted between the two calls
        }
        var info = stat()
        if lstat(path, &info) == 0, info.st_mode & 0o077 != 0, info.st_uid == geteuid() { chmod(path, 0o700) }
    }

    /// `state_dir`: created 0700 with its missing parents (the configuration names it: a link to it is
    /// the operator's choice and is followed), narrowed to 0700 when it is ours and wider, and refused
    /// when it is not ours and others may write to it (they could replace anything in it).
    public static func stateDirectory(_ path: String) throws(SyncFailure) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            let code = (error as NSError).code == CocoaError.fileWriteOutOfSpace.rawValue ? ENOSPC : EACCES
            throw SyncFailure(.config, "cannot create state_dir \(path): \(String(cString: strerror(code))). Set state_dir in mirrors.yaml, or GITMIRROR_STATE_DIR, to a folder this user can write")
        }
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        if info.st_uid == geteuid() {
            if info.st_mode & 0o077 != 0 { chmod(path, 0o700) }
        } else if info.st_mode & 0o022 != 0 {
            throw SyncFailure(.config, "state_dir \(path) belongs to uid \(info.st_uid) and others can write to it (mode \(String(info.st_mode & 0o777, radix: 8))): anyone could replace the caches or the history there. Use a folder this user owns (chmod 700), or set state_dir to one")
        }
    }

    /// Opens (creating, 0600) one of gitmirror's own files without following a link.
    public static func open(_ path: String, flags: Int32) throws(SyncFailure) -> Int32 {
        let descriptor = Glibc.open(path, flags | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            if errno == ELOOP { throw SyncFailure(.config, problem(path, directory: false) ?? "\(path) is a symbolic link; gitmirror never follows links in what it owns") }
            throw SyncFailure(.internal, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        return descriptor
    }

    /// Narrows an existing file of gitmirror's to 0600 (SQLite makes its -wal and -shm with the
    /// database's permissions, so the database's decide).
    public static func makePrivate(file path: String) {
        var info = stat()
        if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o077 != 0, info.st_uid == geteuid() { chmod(path, 0o600) }
    }
}

