import Foundation
import Synchronization
import Git

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
        // and the enumerator stat()ed each of the cache's files; here only a left-over is (FolderEntries).
        func walk(_ relative: String) {
            for entry in FolderEntries.read(relative.isEmpty ? path : path + "/" + relative).entries {
                let child = relative.isEmpty ? entry.name : relative + "/" + entry.name
                let leftOver = entry.name.hasSuffix(".lock") || entry.name.hasPrefix("pack_git2_") || entry.name.hasPrefix("tmp_object_git2_")
                    || entry.name.hasPrefix("tmp_pack_") || entry.name.hasPrefix("tmp_idx_")
                if entry.kind == .folder {
                    walk(child)
                } else if leftOver, entry.kind == .file, let modified = FileStatus(path + "/" + child)?.modified, modified.timeIntervalSince1970 < limit {
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
