import CLibgit2
import Foundation

/// A fetch's refs written into `packed-refs` in one file, as `git clone` writes them: libgit2's
/// `git_remote_update_tips` creates one loose file (a lock file, a rename and, when durable, an fsync)
/// per ref, which for 20,000 refs costs seconds of inode work alone. The caller holds the repository's
/// lock (the cache's), so no other writer is about.
extension Repository {
    /// The refs these refspecs (`+src:dst`, at most one `*` on each side) make of the advertised heads.
    static func destinations(of heads: [RemoteHead], refspecs: [String]) -> [String: ObjectID]? {
        var exact: [String: String] = [:]
        var patterns: [(source: (prefix: String, suffix: String), destination: (prefix: String, suffix: String))] = []
        for refspec in refspecs {
            let body = refspec.hasPrefix("+") ? String(refspec.dropFirst()) : refspec
            let sides = body.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard sides.count == 2 else { return nil }
            let stars = (sides[0].filter { $0 == "*" }.count, sides[1].filter { $0 == "*" }.count)
            switch stars {
            case (0, 0): exact[sides[0]] = sides[1]
            case (1, 1):
                func split(_ side: String) -> (prefix: String, suffix: String) {
                    let star = side.firstIndex(of: "*")!
                    return (String(side[..<star]), String(side[side.index(after: star)...]))
                }
                patterns.append((split(sides[0]), split(sides[1])))
            default: return nil
            }
        }
        var result: [String: ObjectID] = [:]
        for head in heads {
            if let destination = exact[head.name] {
                result[destination] = head.id
                continue
            }
            for pattern in patterns {
                let name = head.name
                guard name.hasPrefix(pattern.source.prefix), name.hasSuffix(pattern.source.suffix),
                      name.utf8.count >= pattern.source.prefix.utf8.count + pattern.source.suffix.utf8.count else { continue }
                let middle = name.dropFirst(pattern.source.prefix.count).dropLast(pattern.source.suffix.count)
                result[pattern.destination.prefix + middle + pattern.destination.suffix] = head.id
                break
            }
        }
        return result
    }

    /// Writes `updates` into `packed-refs` (removing their loose files), or returns false without
    /// writing anything when it cannot do so exactly as libgit2 would: a name it does not expect, an
    /// object the repository lacks, a ref in a folder's place (`a` beside `a/b`), a packed-refs file it
    /// does not read. The caller then lets libgit2 write them.
    func writePacked(_ updates: [String: ObjectID], durable: Bool) throws(GitError) -> Bool {
        guard let cPath = git_repository_path(pointer) else { return false }
        let gitDirectory = String(cString: cPath)
        let packedPath = gitDirectory + "packed-refs"
        var packed: [String: ObjectID] = [:]
        if FileManager.default.fileExists(atPath: packedPath) {
            guard let text = try? String(contentsOfFile: packedPath, encoding: .utf8),
                  let entries = Self.parsePacked(text) else { return false }
            packed = entries
        }
        let existing = try references(matching: "refs/*")
        var odb: OpaquePointer?
        try check("git_repository_odb", git_repository_odb(&odb, pointer))
        defer { git_odb_free(odb) }
        var changed: [String: ObjectID] = [:]
        for (name, id) in updates where existing[name] != id {
            var oid = id.raw
            guard name.hasPrefix("refs/"), name.utf8.allSatisfy({ $0 > 32 && $0 != 127 }), git_odb_exists(odb, &oid) == 1 else { return false }
            changed[name] = id
        }
        if changed.isEmpty { return true }
        // A ref where another's folder is (or the other way round) is libgit2's to refuse.
        let names = Set(existing.keys).union(changed.keys)
        var folders = Set<Substring>()
        for name in names {
            var index = name.startIndex
            while let slash = name[index...].firstIndex(of: "/") {
                folders.insert(name[..<slash])
                index = name.index(after: slash)
            }
        }
        if names.contains(where: { folders.contains(Substring($0)) }) { return false }

        packed.merge(changed) { _, new in new }
        let text = Self.packedRefsText(packed)
        let lockPath = packedPath + ".lock"
        let descriptor = open(lockPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw GitError(function: "packed-refs", code: -1, errorClass: 0,
                           message: "cannot lock \(lockPath): \(String(cString: strerror(errno)))")
        }
        var failure: String?
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 { if errno == EINTR { continue }; failure = String(cString: strerror(errno)); break }
            written += count
        }
        if failure == nil, durable, fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
        close(descriptor)
        if failure == nil, rename(lockPath, packedPath) != 0 { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(lockPath)
            throw GitError(function: "packed-refs", code: -1, errorClass: 0, message: "cannot write \(packedPath): \(failure)")
        }
        // The packed values are in place; a loose file left would hide its new value, so each goes.
        for name in changed.keys {
            let loose = gitDirectory + name
            if unlink(loose) == 0 {
                var folder = (loose as NSString).deletingLastPathComponent
                while folder.count > gitDirectory.count + "refs".count, rmdir(folder) == 0 {
                    folder = (folder as NSString).deletingLastPathComponent
                }
            }
        }
        if durable {
            let directory = open(gitDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if directory >= 0 { _ = fsync(directory); close(directory) }
        }
        return true
    }

    /// A `packed-refs` file holding `entries`, sorted by their names' bytes as git sorts them (no
    /// peeled lines: readers peel for themselves).
    public static func packedRefsText(_ entries: [String: ObjectID]) -> String {
        var lines = entries.map { (name: Array($0.key.utf8), line: "\($0.value.hex) \($0.key)\n") }
        lines.sort { $0.name.lexicographicallyPrecedes($1.name) }
        return "# pack-refs with: sorted \n" + lines.map(\.line).joined()
    }

    /// `packed-refs`' entries (peeled lines dropped: the file is written again without them), or nil
    /// for a line this reader does not know.
    static func parsePacked(_ text: String) -> [String: ObjectID]? {
        var entries: [String: ObjectID] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("#") || line.hasPrefix("^") { continue }
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let id = ObjectID(hex: String(parts[0])) else { return nil }
            entries[String(parts[1])] = id
        }
        return entries
    }
}
