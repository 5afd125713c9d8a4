import CLibgit2
import Foundation

/// A ref as a server advertises it.
public struct RemoteHead: Hashable, Sendable, Codable {
    public let name: String
    public let id: ObjectID

    public init(name: String, id: ObjectID) {
        self.name = name
        self.id = id
    }
}

public enum Direction: Sendable {
    case fetch, push

    var raw: git_direction { self == .fetch ? GIT_DIRECTION_FETCH : GIT_DIRECTION_PUSH }
}

/// An in-memory remote: nothing about it (least of all its URL) is written to
/// any repository's configuration.
public final class Remote {
    let pointer: OpaquePointer
    /// A remote must not outlive the repository it was created in.
    private let repository: Repository?
    private let hooks: TransferHooks
    private var payload: UnsafeMutableRawPointer { Unmanaged.passUnretained(hooks).toOpaque() }

    /// A remote with no repository, good for listing refs only.
    public init(url: String, hooks: TransferHooks) throws(GitError) {
        Libgit2.initialize()
        if let failure = Libgit2.setupFailure { throw failure }
        try Self.prepareTrust(for: url)
        var out: OpaquePointer?
        try check("git_remote_create_detached", git_remote_create_detached(&out, url))
        self.pointer = out!
        self.repository = nil
        self.hooks = hooks
    }

    /// A remote that fetches into or pushes from `repository`.
    public init(url: String, in repository: Repository, hooks: TransferHooks) throws(GitError) {
        try Self.prepareTrust(for: url)
        var out: OpaquePointer?
        try check("git_remote_create_anonymous", git_remote_create_anonymous(&out, repository.pointer, url))
        self.pointer = out!
        self.repository = repository
        self.hooks = hooks
    }

    /// An HTTP(S) remote may speak TLS: the system's CAs are loaded first if a worker deferred them
    /// (`Libgit2.deferSystemCertificates`). Every connection libgit2 makes starts from a Remote.
    private static func prepareTrust(for url: String) throws(GitError) {
        guard url.utf8.prefix(4).map({ $0 | 0x20 }) == Array("http".utf8) else { return }
        try Libgit2.useSystemCertificates()
    }

    deinit {
        git_remote_disconnect(pointer)
        git_remote_free(pointer)
    }

    /// Redirects to another host are never followed: credentials go only where the
    /// configuration sends them (libgit2's default follows one on the first request).
    static let redirects = GIT_REMOTE_REDIRECT_NONE

    public func connect(_ direction: Direction) throws(GitError) {
        var options = git_remote_connect_options()
        git_remote_connect_options_init(&options, UInt32(GIT_REMOTE_CONNECT_OPTIONS_VERSION))
        options.callbacks = makeCallbacks(payload)
        options.follow_redirects = Self.redirects
        try check("git_remote_connect_ext", git_remote_connect_ext(pointer, direction.raw, &options))
    }

    public func disconnect() {
        git_remote_disconnect(pointer)
    }

    /// The refs the server advertised on the current connection, without peeled (`^{}`) entries.
    public func advertisedHeads() throws(GitError) -> [RemoteHead] {
        var heads: UnsafeMutablePointer<UnsafePointer<git_remote_head>?>?
        var count = 0
        try check("git_remote_ls", git_remote_ls(&heads, &count, pointer))
        var result: [RemoteHead] = []
        for index in 0..<count {
            guard let head = heads?[index]?.pointee, let cName = head.name else { continue }
            let name = String(cString: cName)
            if name.hasSuffix("^{}") { continue }
            result.append(RemoteHead(name: name, id: ObjectID(head.oid)))
        }
        return result
    }

    /// The branch the server's HEAD points at, on the current connection (nil when it has none).
    public func defaultBranch() throws(GitError) -> String? {
        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        let code = git_remote_default_branch(&buffer, pointer)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try check("git_remote_default_branch", code)
        guard let text = buffer.ptr else { return nil }
        return String(cString: text)
    }

    /// Connects, lists and disconnects.
    public func listHeads(_ direction: Direction = .fetch) throws(GitError) -> [RemoteHead] {
        try connect(direction)
        defer { disconnect() }
        return try advertisedHeads()
    }

    /// No tag following, no prune, no FETCH_HEAD, no redirect.
    private func fetchOptions() -> git_fetch_options {
        var options = git_fetch_options()
        git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION))
        options.callbacks = makeCallbacks(payload)
        options.prune = GIT_FETCH_NO_PRUNE
        options.update_fetchhead = 0
        options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
        options.follow_redirects = Self.redirects
        return options
    }

    /// Fetches exactly these refspecs: no tag following, no prune, no FETCH_HEAD. `durable`: the refs
    /// written are fsynced (they may be the only copy of something).
    public func fetch(refspecs: [String], durable: Bool = true) throws(GitError) {
        try fetch(refspecs: refspecs, durable: durable) { _ in }
    }

    /// `fetch(refspecs:)` in its steps, with a look at the connection's own advertisement before the
    /// pack is asked for: `beforeDownload` gets the refs this very connection will fetch. The refs are
    /// written packed, in one file (PackedRefs.swift), or by libgit2 when that cannot be done exactly.
    public func fetch(refspecs: [String], durable: Bool = true, beforeDownload: ([RemoteHead]) -> Void) throws(GitError) {
        var options = fetchOptions()
        try connect(.fetch)
        defer { disconnect() }
        let heads = try advertisedHeads()
        beforeDownload(heads)
        try download(refspecs, &options)
        if let repository, let updates = Repository.destinations(of: heads, refspecs: refspecs),
           try repository.writePacked(updates, durable: durable) {
            return
        }
        try check("git_remote_update_tips", git_remote_update_tips(pointer, &options.callbacks, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE, "gitmirror fetch"))
    }

    /// A fetch whose refs land in `target` rather than in the repository the remote negotiates from
    /// (a scratch repository that borrows `target`'s objects and offers the server only a few tips:
    /// FetchScratch). `adopt` moves what was downloaded into `target` before its refs are written.
    /// On the current connection, when there is one (its advertisement is what is fetched).
    public func fetch(refspecs: [String], durable: Bool, refsInto target: Repository, adopt: () throws(GitError) -> Void) throws(GitError) {
        var options = fetchOptions()
        if git_remote_connected(pointer) == 0 { try connect(.fetch) }
        defer { disconnect() }
        let heads = try advertisedHeads()
        try download(refspecs, &options)
        try adopt()
        guard let updates = Repository.destinations(of: heads, refspecs: refspecs) else {
            throw GitError(function: "fetch", code: -1, errorClass: 0, message: "a refspec this fetch cannot map: \(refspecs.first ?? "")")
        }
        if try target.writePacked(updates, durable: durable) { return }
        // What writePacked leaves to libgit2 (a folder clash, a missing object) fails here as update_tips would.
        let existing = try target.references(matching: "refs/*")
        for (name, id) in updates.sorted(by: { $0.key < $1.key }) where existing[name] != id {
            try target.setReference(name, to: id, message: "gitmirror fetch")
        }
    }

    /// Negotiates and downloads the pack (no ref is written): the object database is not rescanned at
    /// each tip it lacks (Repository.withoutRescans).
    private func download(_ refspecs: [String], _ options: inout git_fetch_options) throws(GitError) {
        let pointer = self.pointer
        func run() throws(GitError) {
            try withStrarray(refspecs) { (array) throws(GitError) in
                try check("git_remote_download", git_remote_download(pointer, &array, &options))
            }
        }
        guard let repository else { return try run() }
        try repository.withoutRescans { () throws(GitError) in try run() }
    }

    /// Sends these refspecs on the current connection (or a new one). The
    /// server's verdict per ref lands in the hooks' `pushStatuses`.
    public func upload(refspecs: [String]) throws(GitError) {
        var options = git_push_options()
        git_push_options_init(&options, UInt32(GIT_PUSH_OPTIONS_VERSION))
        options.callbacks = makeCallbacks(payload)
        // One delta thread per CPU. Its pack_progress calls then come from those threads (serialized): Callbacks.swift.
        options.pb_parallelism = 0
        options.follow_redirects = Self.redirects
        try withStrarray(refspecs) { (array) throws(GitError) in
            try check("git_remote_upload", git_remote_upload(pointer, &array, &options))
        }
    }
}

@discardableResult
func withStrarray<T>(_ strings: [String], _ body: (inout git_strarray) throws(GitError) -> T) throws(GitError) -> T {
    let duplicated = strings.map { strdup($0) }
    defer { duplicated.forEach { free($0) } }
    var pointers = duplicated
    return try pointers.withUnsafeMutableBufferPointer { (buffer) throws(GitError) -> T in
        var array = git_strarray(strings: buffer.baseAddress, count: buffer.count)
        return try body(&array)
    }
}
