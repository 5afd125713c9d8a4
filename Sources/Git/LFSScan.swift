import CLibgit2

/// A Git LFS pointer: the object a small blob stands for (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md).
public struct LFSPointer: Hashable, Sendable, Codable {
    /// The object's SHA-256, 64 lowercase hex digits.
    public var oid: String
    public var size: Int

    public init(oid: String, size: Int) {
        self.oid = oid
        self.size = size
    }

    /// Pointer files are small (the spec caps them at 1024 bytes) text in this shape.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> LFSPointer? {
        guard bytes.count < 1024 else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix("version https://git-lfs.github.com/spec/v1\n") || text.hasPrefix("version https://hawser.github.com/spec/v1\n") else { return nil }
        var oid: String?
        var size: Int?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("oid sha256:") {
                let hex = line.dropFirst("oid sha256:".count)
                if hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) { oid = String(hex) }
            } else if line.hasPrefix("size "), let value = Int(line.dropFirst(5)), value >= 0 {
                size = value
            }
        }
        guard let oid, let size else { return nil }
        return LFSPointer(oid: oid, size: size)
    }
}

extension Repository {
    /// The LFS pointers in the trees of every commit reachable from `tips` and not from `known`
    /// (tips the secondary already holds): what a push of `tips` may carry that it lacks. Each tree
    /// and each blob is read once; only blobs small enough to be pointers are read at all.
    public func lfsPointers(reachableFrom tips: [ObjectID], excluding known: [ObjectID]) throws(GitError) -> [LFSPointer] {
        var walk: OpaquePointer?
        try check("git_revwalk_new", git_revwalk_new(&walk, pointer))
        defer { git_revwalk_free(walk) }
        var pushed = 0
        for tip in tips {
            guard let commit = try peeledCommit(tip) else { continue }
            var oid = commit.raw
            try check("git_revwalk_push", git_revwalk_push(walk, &oid))
            pushed += 1
        }
        guard pushed > 0 else { return [] }
        for tip in known where try contains(tip) {
            guard let commit = try peeledCommit(tip) else { continue }
            var oid = commit.raw
            try check("git_revwalk_hide", git_revwalk_hide(walk, &oid))
        }
        var odb: OpaquePointer?
        try check("git_repository_odb", git_repository_odb(&odb, pointer))
        defer { git_odb_free(odb) }
        var seenTrees = Set<ObjectID>()
        var seenBlobs = Set<ObjectID>()
        var found = Set<LFSPointer>()
        var oid = git_oid()
        while true {
            let code = git_revwalk_next(&oid, walk)
            if code == GIT_ITEROVER.rawValue { break }
            try check("git_revwalk_next", code)
            var commit: OpaquePointer?
            try check("git_commit_lookup", git_commit_lookup(&commit, pointer, &oid))
            let tree = ObjectID(git_commit_tree_id(commit).pointee)
            git_commit_free(commit)
            var pending = [tree]
            while let treeID = pending.popLast() {
                guard seenTrees.insert(treeID).inserted else { continue }
                var treeOID = treeID.raw
                var tree: OpaquePointer?
                try check("git_tree_lookup", git_tree_lookup(&tree, pointer, &treeOID))
                defer { git_tree_free(tree) }
                for index in 0..<git_tree_entrycount(tree) {
                    guard let entry = git_tree_entry_byindex(tree, index) else { continue }
                    let id = ObjectID(git_tree_entry_id(entry).pointee)
                    switch git_tree_entry_type(entry) {
                    case GIT_OBJECT_TREE: pending.append(id)
                    case GIT_OBJECT_BLOB:
                        guard seenBlobs.insert(id).inserted else { continue }
                        var blobOID = id.raw
                        var size = 0
                        var type = GIT_OBJECT_INVALID
                        try check("git_odb_read_header", git_odb_read_header(&size, &type, odb, &blobOID))
                        guard size < 1024 else { continue }
                        var blob: OpaquePointer?
                        try check("git_blob_lookup", git_blob_lookup(&blob, pointer, &blobOID))
                        defer { git_blob_free(blob) }
                        let bytes = UnsafeRawBufferPointer(start: git_blob_rawcontent(blob), count: Int(git_blob_rawsize(blob)))
                        if let pointer = LFSPointer.parse(bytes) { found.insert(pointer) }
                    default: continue   // submodules (commits) carry no LFS objects here
                    }
                }
            }
        }
        return found.sorted { $0.oid < $1.oid }
    }

    /// The commit an id names, through annotated tags; nil for a tag of a tree or a blob.
    func peeledCommit(_ id: ObjectID) throws(GitError) -> ObjectID? {
        var oid = id.raw
        var object: OpaquePointer?
        try check("git_object_lookup", git_object_lookup(&object, pointer, &oid, GIT_OBJECT_ANY))
        defer { git_object_free(object) }
        var peeled: OpaquePointer?
        guard git_object_peel(&peeled, object, GIT_OBJECT_COMMIT) == 0 else { return nil }
        defer { git_object_free(peeled) }
        return ObjectID(git_object_id(peeled).pointee)
    }
}
