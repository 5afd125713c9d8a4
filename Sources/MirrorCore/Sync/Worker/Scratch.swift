import Foundation
import Git

/// An empty repository inside the cache whose object store is the cache's (alternates): what git or
/// libgit2 reads of its refs is only what the job put there. One per worker process and kind (a job at
/// a time); one a killed worker left is removed by the next.
struct ScratchRepository {
    let path: String

    init(cache: String, kind: String) throws {
        let files = FileManager.default
        let prefix = "gitmirror-\(kind)-"
        for name in (try? files.contentsOfDirectory(atPath: cache)) ?? [] where name.hasPrefix(prefix) {
            if let pid = Int32(name.dropFirst(prefix.count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                try? files.removeItem(atPath: cache + "/" + name)
            }
        }
        path = cache + "/" + prefix + "\(getpid())"
        try? files.removeItem(atPath: path)
        // The few files git and libgit2 need to open a bare repository, written here: git_repository_init
        // wrote its config three times, a hook sample and a description, and synced what it wrote (~5 ms
        // before every incremental fetch), for a folder that lives for one job.
        for folder in ["", "/objects", "/objects/info", "/objects/pack", "/refs", "/refs/heads", "/refs/tags"] {
            guard mkdir(path + folder, 0o755) == 0 || errno == EEXIST else { throw Self.failure("create", path + folder, cache: cache) }
        }
        let objects = URL(fileURLWithPath: cache).appendingPathComponent("objects").standardizedFileURL.path
        for (file, text) in [("HEAD", "ref: refs/heads/main\n"), ("config", "[core]\n\trepositoryformatversion = 0\n\tbare = true\n"),
                             ("objects/info/alternates", objects + "\n")] {
            let descriptor = open(path + "/" + file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw Self.failure("write", path + "/" + file, cache: cache) }
            let bytes = Array(text.utf8)
            let written = write(descriptor, bytes, bytes.count)
            close(descriptor)
            guard written == bytes.count else { throw Self.failure("write", path + "/" + file, cache: cache) }
        }
    }

    /// A scratch folder that cannot be made is the cache's fault: owned by another user, a full disk.
    private static func failure(_ verb: String, _ path: String, cache: String) -> SyncFailure {
        let text = "cannot \(verb) \(path): \(String(cString: strerror(errno)))"
        return Classification.localFault(text, cachePath: cache) ?? SyncFailure(.internal, text)
    }

    /// Its refs, all at once, in one packed-refs file.
    func writeRefs(_ refs: [String: ObjectID]) throws {
        try Repository.packedRefsText(refs).write(toFile: path + "/packed-refs", atomically: true, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A push from a repository without refs: its sources are named by object id, and git has no refs to
/// match them against (git matches every refspec against every ref it pushes from: thousands of updates
/// from a cache of thousands of refs is minutes of that).
struct PushScratch {
    static let threshold = 64
    let scratch: ScratchRepository
    var path: String { scratch.path }

    init(cache: String) throws {
        scratch = try ScratchRepository(cache: cache, kind: "push")
    }

    func remove() { scratch.remove() }

    /// Where a plain update's source waits in the scratch repository: `refs/heads/x` as
    /// `refs/gitmirror-push/heads/x`, pushed with `refs/gitmirror-push/*:refs/*`.
    static let namespace = "refs/gitmirror-push/"

    /// Writes the plain updates (no force, no deletion) as refs of this repository, in one packed-refs
    /// file; returns their names. Forced updates and deletions keep their explicit refspecs and leases.
    func plant(_ updates: [WireUpdate]) throws -> Set<String> {
        let plain = updates.filter { !$0.force && $0.new != nil && $0.ref.hasPrefix("refs/") && !$0.ref.utf8.contains(10) }
        let refs = Dictionary(plain.map { (Self.namespace + $0.ref.dropFirst("refs/".count), $0.new!) }, uniquingKeysWith: { a, _ in a })
        try scratch.writeRefs(refs)
        return Set(plain.map(\.ref))
    }
}

/// An incremental fetch negotiates from a repository whose only refs are the tips it should offer.
/// libgit2 1.5 offers the server every ref of the repository it fetches into, walked from each ref in
/// name order, 20 at a time, and settles on the first batch the server knows any of: with a cache of
/// 200 feature branches, a new commit on `main` came as 667 objects, `main`'s old tip never offered.
/// Offered the old tips of the refs that moved (and the default branch's), the server sends what is new
/// on them. The pack lands in the scratch repository and moves into the cache before the refs are written.
struct FetchScratch {
    let scratch: ScratchRepository
    let cache: String
    let repository: Repository

    init(cache: String, offering tips: [ObjectID]) throws {
        scratch = try ScratchRepository(cache: cache, kind: "fetch")
        self.cache = cache
        try Self.offer(tips, in: scratch)
        repository = try Repository.openBare(at: scratch.path)
    }

    /// Makes `tips` the only refs offered (before the download: libgit2 reads them when it negotiates).
    func offer(_ tips: [ObjectID]) throws { try Self.offer(tips, in: scratch) }

    private static func offer(_ tips: [ObjectID], in scratch: ScratchRepository) throws {
        var refs: [String: ObjectID] = [:]
        for (index, tip) in Set(tips).sorted().enumerated() { refs["refs/offered/\(index)"] = tip }
        try scratch.writeRefs(refs)
    }

    func remove() { scratch.remove() }

    /// Moves the packs the fetch wrote into the cache, each `.pack` before its `.idx` (a reader finds a
    /// pack by its index, so it never sees an index without its pack). A pack the cache already holds
    /// under the same name has the same content.
    func adoptPacks() throws(GitError) {
        let source = scratch.path + "/objects/pack/"
        let destination = cache + "/objects/pack/"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: source)) ?? []
        for name in names.sorted() where name.hasPrefix("pack-") && name.hasSuffix(".pack") {
            let stem = String(name.dropLast(".pack".count))
            guard names.contains(stem + ".idx") else { continue }
            for suffix in [".pack", ".idx"] {
                if FileManager.default.fileExists(atPath: destination + stem + suffix) { continue }
                guard rename(source + stem + suffix, destination + stem + suffix) == 0 else {
                    throw GitError(function: "fetch", code: -1, errorClass: 0,
                                   message: "cannot move \(stem + suffix) into the cache \(cache): \(String(cString: strerror(errno)))")
                }
            }
        }
    }
}
