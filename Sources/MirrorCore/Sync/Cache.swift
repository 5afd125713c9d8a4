import Foundation
import Synchronization
import Git
// On Linux `struct stat` reaches Swift through Dispatch's C module, which MemberImportVisibility wants named.
#if canImport(CDispatch)
import CDispatch
#endif

/// The bare cache of one repository. It is gitmirror's own and guarded by the repository's
/// lock, so what a killed process left in it can be cleared by whoever holds the lock.
struct Cache: Sendable {
    let name: String
    let stateDirectory: URL

    var path: String { stateDirectory.appendingPathComponent("cache/\(name).git").path }

    /// Removes the `*.lock` files older than `since` (the moment this process took the repository
    /// lock: no one else can be writing) and the temporary packs and objects of a killed fetch.
    /// Returns what was removed, relative to the cache.
    func sweep(olderThan since: Date) -> [String] {
        let limit = since.timeIntervalSince1970
        var found: [String] = []
        // readdir, not FileManager's enumerator: this runs before every listing of every repository,
        // and the enumerator stat()ed each of the cache's files; here only a left-over's name is.
        func walk(_ relative: String) {
            let folder = relative.isEmpty ? path : path + "/" + relative
            guard let directory = opendir(folder) else { return }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard name != ".", name != ".." else { continue }
                let child = relative.isEmpty ? name : relative + "/" + name
                var type = Int32(entry.pointee.d_type)
                let leftOver = name.hasSuffix(".lock") || name.hasPrefix("pack_git2_") || name.hasPrefix("tmp_object_git2_")
                    || name.hasPrefix("tmp_pack_") || name.hasPrefix("tmp_idx_")
                var info = stat()
                if type == Int32(DT_UNKNOWN) || leftOver {
                    guard lstat(path + "/" + child, &info) == 0 else { continue }
                    type = (info.st_mode & S_IFMT) == S_IFDIR ? Int32(DT_DIR) : (info.st_mode & S_IFMT) == S_IFREG ? Int32(DT_REG) : Int32(DT_UNKNOWN)
                }
                if type == Int32(DT_DIR) {
                    walk(child)
                } else if leftOver, type == Int32(DT_REG),
                          Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1_000_000_000 < limit {
                    found.append(child)
                }
            }
        }
        walk("")
        return found.filter { unlink(path + "/" + $0) == 0 }.sorted()
    }

    /// Moves the cache to `state_dir/quarantine/<name>-<stamp>.git`, keeping it for inspection.
    func quarantine(stamp: String) throws -> String {
        let folder = stateDirectory.appendingPathComponent("quarantine")
        // A link planted as quarantine/ would move the damaged cache (private code) wherever it points.
        try OwnedPath.directory(folder.path)
        let destination = folder.appendingPathComponent("\(name)-\(stamp).git")
        try OwnedPath.check(destination.path, directory: true)
        try FileManager.default.moveItem(atPath: path, toPath: destination.path)
        return destination.path
    }
}

/// The cache's refs for a run (RepositorySync.cacheRefs): whether there are any is known at once,
/// from the files; the refs themselves are read on a thread of their own when packed-refs is large,
/// so that the primary's listing does not wait for them.
final class CacheRefsReader: Sendable {
    let isEmpty: Bool
    private let read = Mutex<[String: ObjectID]?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(_ path: String) {
        let packed = FileStatus(path + "/packed-refs")?.size ?? 0
        if packed < 64 * 1024 {
            let refs = RepositorySync.cacheRefs(path)
            isEmpty = refs.isEmpty
            read.withLock { $0 = refs }
            done.signal()
        } else {
            // 64 KiB of packed refs: a thousand refs or more, read in the background.
            isEmpty = false
            Thread.detachNewThread { [self] in
                let refs = RepositorySync.cacheRefs(path)
                read.withLock { $0 = refs }
                done.signal()
            }
        }
    }

    /// The refs, once read; nil when none could be (the reader of the fetch reads them again, and
    /// fails as a damaged cache does).
    var value: [String: ObjectID]? {
        done.wait()
        done.signal()
        return read.withLock { $0.flatMap { $0.isEmpty ? nil : $0 } }
    }
}

/// What a cache keeps on disk: its packs (maintenance keeps them under `cachePackLimit`) and their
/// bytes, read from `objects/pack` (one directory, a stat per pack: cheap at the end of every run).
public struct CacheFigures: Codable, Sendable, Equatable {
    public var packs: Int
    public var bytes: Int

    /// The cache of `repository` under the configuration's state directory.
    public init?(stateDirectory: URL, repository: String) {
        self.init(cache: Cache(name: repository, stateDirectory: stateDirectory).path)
    }

    public init?(cache path: String) {
        let folder = path + "/objects/pack"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return nil }
        packs = 0
        bytes = 0
        for name in names where name.hasPrefix("pack-") || name.hasPrefix("pack_") {
            if name.hasSuffix(".pack") { packs += 1 }
            bytes += FileStatus(folder + "/" + name)?.size ?? 0
        }
    }
}
