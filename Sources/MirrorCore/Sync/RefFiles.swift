import Foundation
import Git

/// The refs of a bare repository read from its files as git stores them: `packed-refs`, then the
/// loose files under `refs/`, which win. The supervisor reads its caches' refs this way, not through
/// libgit2: libgit2's setup parses the system's whole CA file (~10 ms of CPU) before it opens
/// anything, and a sync where the primary moved read the cache's refs twice on its way to the first
/// listing and after the fetch. Only ref files are read, never an object (DESIGN: objects are read
/// in workers). A symbolic ref is not a ref with an id, and is left out, as libgit2's iterator does.
enum RefFiles {
    struct Unreadable: Error, CustomStringConvertible {
        let path: String
        let reason: String
        var description: String { "cannot read the ref file \(path): \(reason)" }
    }

    /// Every ref under `refs/`, by name. Throws for a file that is not a ref (a torn write, a damaged
    /// cache): the caller then treats the cache as libgit2 would have failed on it.
    static func read(gitDirectory: String) throws(Unreadable) -> [String: ObjectID] {
        var refs = try packed(gitDirectory + "/packed-refs")
        try loose(gitDirectory, relative: "refs", into: &refs)
        return refs
    }

    /// `packed-refs`: a `# pack-refs with:` header, lines of `<id> <name>`, and `^<id>` lines that
    /// give the tag above them peeled (not a ref of their own).
    static func packed(_ path: String) throws(Unreadable) -> [String: ObjectID] {
        guard let data = FileManager.default.contents(atPath: path) else {
            if FileManager.default.fileExists(atPath: path) { throw Unreadable(path: path, reason: "it cannot be opened") }
            return [:]
        }
        var refs: [String: ObjectID] = [:]
        // Read in place, a line at a time: 20,000 refs are read at every run of such a repository.
        let malformed: Bool = data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> Bool in
            refs.reserveCapacity(bytes.count / 64)
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                defer { start = end + 1 }
                guard end > start, bytes[start] != UInt8(ascii: "#"), bytes[start] != UInt8(ascii: "^") else { continue }
                guard end - start > 41, bytes[start + 40] == UInt8(ascii: " "),
                      let id = ObjectID(hexDigits: UnsafeRawBufferPointer(rebasing: bytes[start..<start + 40])) else { return true }
                let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(start + 41)..<end]), as: UTF8.self)
                guard name.hasPrefix("refs/") else { continue }
                refs[name] = id
            }
            return false
        }
        if malformed { throw Unreadable(path: path, reason: "a line is not `<id> <name>`") }
        return refs
    }

    /// The loose refs under `relative` (a folder of the repository), each a file of one id.
    private static func loose(_ root: String, relative: String, into refs: inout [String: ObjectID]) throws(Unreadable) {
        let folder = root + "/" + relative
        let listed = FolderEntries.read(folder)
        if listed.error == ENOENT || listed.error == ENOTDIR { return }
        if listed.error != 0 { throw Unreadable(path: folder, reason: String(cString: strerror(listed.error))) }
        var folders: [String] = []
        // A `.lock` is a ref being written (by a process that holds the repository's lock, or one
        // killed while it did: the sweep removes those); it is not a ref yet.
        for entry in listed.entries where !entry.name.hasSuffix(".lock") {
            let child = relative + "/" + entry.name
            if entry.kind == .folder {
                folders.append(child)
            } else if entry.kind == .file {
                guard let data = FileManager.default.contents(atPath: root + "/" + child) else {
                    throw Unreadable(path: root + "/" + child, reason: "it cannot be opened")
                }
                if data.starts(with: Array("ref: ".utf8)) { continue }
                let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                guard let id = ObjectID(hex: text) else { throw Unreadable(path: root + "/" + child, reason: "it does not hold an object id") }
                refs[child] = id
            }
        }
        for child in folders { try loose(root, relative: child, into: &refs) }
    }
}
