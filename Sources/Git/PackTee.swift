import CGitTee
import CLibgit2

/// Receives the bytes of every pack a repository's fetch writes, as they arrive (the pack still goes
/// to the repository as without it). What the sink does with them never fails the fetch.
public final class PackTee {
    public let sink: (UnsafeRawBufferPointer) -> Void

    public init(sink: @escaping (UnsafeRawBufferPointer) -> Void) { self.sink = sink }
}

private let teeSink: gitmirror_tee_sink = { data, size, payload in
    guard let payload, let data else { return }
    Unmanaged<PackTee>.fromOpaque(payload).takeUnretainedValue().sink(UnsafeRawBufferPointer(start: data, count: size))
}

extension Repository {
    /// Hands every pack this repository object writes from now on to `tee` as well. The repository
    /// keeps `tee` alive; use a repository object of its own for the fetch that should be teed.
    public func teePacks(_ tee: PackTee) throws(GitError) {
        var odb: OpaquePointer?
        try check("git_repository_odb", git_repository_odb(&odb, pointer))
        defer { git_odb_free(odb) }
        retained.append(tee)
        try check("gitmirror_odb_add_tee", gitmirror_odb_add_tee(odb, teeSink, Unmanaged.passUnretained(tee).toOpaque()))
    }
}

extension Repository {
    /// Runs `body` (a fetch) with the object database scanned once at its start and not again after
    /// each object it does not find (gitmirror_odb_pause_rescans): libgit2 asks about every advertised
    /// tip before it downloads, and 20,000 new refs were 20,000 scans of the pack folder. Only under
    /// the cache's lock, where nothing else writes the objects meanwhile; afterwards a miss rescans again
    /// (and finds the pack the fetch wrote).
    func withoutRescans<T>(_ body: () throws(GitError) -> T) throws(GitError) -> T {
        var odb: OpaquePointer?
        try check("git_repository_odb", git_repository_odb(&odb, pointer))
        defer { git_odb_free(odb) }
        var pause = gitmirror_rescan_pause()
        try check("gitmirror_odb_pause_rescans", gitmirror_odb_pause_rescans(odb, &pause))
        defer { gitmirror_odb_resume_rescans(&pause) }
        return try body()
    }
}
