import CLibgit2

/// A git repository on disk; the mirror's cache is a bare one.
public final class Repository {
    let pointer: OpaquePointer
    /// Objects libgit2 holds unretained pointers to for this repository's life (pack tees).
    var retained: [AnyObject] = []

    private init(pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit { git_repository_free(pointer) }

    /// Opens the bare repository at `path`, creating it when it does not exist yet.
    public static func openOrCreateBare(at path: String) throws(GitError) -> Repository {
        Libgit2.initialize()
        if let failure = Libgit2.setupFailure { throw failure }
        var out: OpaquePointer?
        if git_repository_open_bare(&out, path) == 0, let out {
            return Repository(pointer: out)
        }
        try check("git_repository_init", git_repository_init(&out, path, 1))
        guard let out else { throw GitError(function: "git_repository_init", code: -1, errorClass: 0, message: "no repository returned") }
        return Repository(pointer: out)
    }

    public static func openBare(at path: String) throws(GitError) -> Repository {
        Libgit2.initialize()
        if let failure = Libgit2.setupFailure { throw failure }
        var out: OpaquePointer?
        try check("git_repository_open_bare", git_repository_open_bare(&out, path))
        guard let out else { throw GitError(function: "git_repository_open_bare", code: -1, errorClass: 0, message: "no repository returned") }
        return Repository(pointer: out)
    }

    /// Every direct reference whose name matches `glob` (fnmatch, e.g. `refs/heads/*`).
    public func references(matching glob: String = "refs/*") throws(GitError) -> [String: ObjectID] {
        var iterator: OpaquePointer?
        try check("git_reference_iterator_glob_new", git_reference_iterator_glob_new(&iterator, pointer, glob))
        defer { git_reference_iterator_free(iterator) }
        var result: [String: ObjectID] = [:]
        while true {
            var reference: OpaquePointer?
            let code = git_reference_next(&reference, iterator)
            if code == GIT_ITEROVER.rawValue { break }
            try check("git_reference_next", code)
            defer { git_reference_free(reference) }
            guard let cName = git_reference_name(reference), let target = git_reference_target(reference) else { continue }
            result[String(cString: cName)] = ObjectID(target.pointee)
        }
        return result
    }

    /// Points HEAD at `ref` (`refs/heads/main`), as `git symbolic-ref HEAD` does.
    public func setHead(to ref: String) throws(GitError) {
        try check("git_repository_set_head", git_repository_set_head(pointer, ref))
    }

    public func reference(named name: String) throws(GitError) -> ObjectID? {
        var oid = git_oid()
        let code = git_reference_name_to_id(&oid, pointer, name)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try check("git_reference_name_to_id", code)
        return ObjectID(oid)
    }

    public func setReference(_ name: String, to id: ObjectID, message: String) throws(GitError) {
        var reference: OpaquePointer?
        var oid = id.raw
        try check("git_reference_create", git_reference_create(&reference, pointer, name, &oid, 1, message))
        git_reference_free(reference)
    }

    public func deleteReference(_ name: String) throws(GitError) {
        var reference: OpaquePointer?
        let code = git_reference_lookup(&reference, pointer, name)
        if code == GIT_ENOTFOUND.rawValue { return }
        try check("git_reference_lookup", code)
        defer { git_reference_free(reference) }
        try check("git_reference_delete", git_reference_delete(reference))
    }

    /// Whether the object database holds this object.
    public func contains(_ id: ObjectID) throws(GitError) -> Bool {
        var odb: OpaquePointer?
        try check("git_repository_odb", git_repository_odb(&odb, pointer))
        defer { git_odb_free(odb) }
        var oid = id.raw
        return git_odb_exists(odb, &oid) == 1
    }

    /// Whether `commit` has `ancestor` in its history (a fast-forward from `ancestor` to `commit`).
    public func isDescendant(_ commit: ObjectID, of ancestor: ObjectID) throws(GitError) -> Bool {
        var a = commit.raw, b = ancestor.raw
        return try check("git_graph_descendant_of", git_graph_descendant_of(pointer, &a, &b)) == 1
    }

    /// Whether the object is a commit (branches point at commits; tags may not).
    public func isCommit(_ id: ObjectID) throws(GitError) -> Bool {
        var odb: OpaquePointer?
        try check("git_repository_odb", git_repository_odb(&odb, pointer))
        defer { git_odb_free(odb) }
        var oid = id.raw
        var size = 0
        var type = GIT_OBJECT_INVALID
        try check("git_odb_read_header", git_odb_read_header(&size, &type, odb, &oid))
        return type == GIT_OBJECT_COMMIT
    }

    /// Every object id in the object database (loose and packed), without reading the objects.
    public func objectIDs() throws(GitError) -> [ObjectID] {
        var odb: OpaquePointer?
        try check("git_repository_odb", git_repository_odb(&odb, pointer))
        defer { git_odb_free(odb) }
        let collector = ObjectIDCollector()
        let payload = Unmanaged.passUnretained(collector).toOpaque()
        try check("git_odb_foreach", git_odb_foreach(odb, objectIDCallback, payload))
        return collector.ids
    }

    /// Reads (inflates, resolves deltas and checks the hash of) one object; throws when it is damaged.
    public func readObject(_ id: ObjectID) throws(GitError) {
        var odb: OpaquePointer?
        try check("git_repository_odb", git_repository_odb(&odb, pointer))
        defer { git_odb_free(odb) }
        var oid = id.raw
        var object: OpaquePointer?
        try check("git_odb_read", git_odb_read(&object, odb, &oid))
        git_odb_object_free(object)
    }
}

/// Collects ids for `objectIDs()`; lent to the C callback for one call.
final class ObjectIDCollector {
    var ids: [ObjectID] = []
}
