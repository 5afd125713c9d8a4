import Foundation
#if canImport(CDispatch)
import CDispatch
#endif

/// A file's size and modification time from stat(2). FileManager's attributesOfItem also names the
/// file's owner and group, which asks the system's user database (NSS: /etc/passwd, nscd) on every
/// call: a few milliseconds on the way to every sync's first listing, and once per pack after it.
public struct FileStatus: Sendable {
    public let size: Int
    public let modified: Date

    /// Nil when nothing is at the path. A symbolic link is not followed (lstat, as attributesOfItem does).
    public init?(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        size = Int(info.st_size)
        modified = Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1_000_000_000)
    }
}

/// A folder's entries by readdir(3), each with its kind: the file system says it (d_type), and lstat is
/// asked only where it does not. FileManager's enumerator stat()ed every file; the cache's sweep and
/// its ref files are read before every listing.
public enum FolderEntries {
    public enum Kind: Sendable { case folder, file, other }

    /// The entries but `.` and `..`; an empty list and the errno when the folder cannot be opened.
    public static func read(_ folder: String) -> (entries: [(name: String, kind: Kind)], error: Int32) {
        guard let directory = opendir(folder) else { return ([], errno) }
        defer { closedir(directory) }
        var entries: [(name: String, kind: Kind)] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name != ".", name != ".." else { continue }
            var type = Int32(entry.pointee.d_type)
            if type == Int32(DT_UNKNOWN) {
                var info = stat()
                guard lstat(folder + "/" + name, &info) == 0 else { continue }
                type = (info.st_mode & S_IFMT) == S_IFDIR ? Int32(DT_DIR) : (info.st_mode & S_IFMT) == S_IFREG ? Int32(DT_REG) : Int32(DT_UNKNOWN)
            }
            entries.append((name, type == Int32(DT_DIR) ? .folder : type == Int32(DT_REG) ? .file : .other))
        }
        return (entries, 0)
    }
}
