import CLibgit2

/// Process-wide libgit2 setup. Call `initialize()` once before any other call.
public enum Libgit2 {
    private static let once: Void = {
        git_libgit2_init()
        // Never read the user's or the system's git configuration: an
        // `url.<x>.insteadOf` there would silently send a push elsewhere.
        for level in [GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_PROGRAMDATA] {
            _ = gitmirror_opts_set_search_path(level.rawValue, "")
        }
        _ = gitmirror_opts_set_user_agent("gitmirror")
        // The cache holds the only copy of every backup ref: make its writes durable.
        _ = gitmirror_opts_enable_fsync(1)
    }()

    public static func initialize() { _ = once }

    /// Trust the certificates in this PEM file (which must include the system
    /// CAs when those are still wanted: libgit2 replaces its store with it).
    public static func setCertificateFile(_ path: String) throws(GitError) {
        try check("git_libgit2_opts(SET_SSL_CERT_LOCATIONS)", gitmirror_opts_set_ssl_cert_file(path))
    }

    /// fsync objects and refs: the cache is the only copy of a backup ref.
    public static func enableFsync(_ enabled: Bool) throws(GitError) {
        try check("git_libgit2_opts(ENABLE_FSYNC_GITDIR)", gitmirror_opts_enable_fsync(enabled ? 1 : 0))
    }

    public static var version: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        git_libgit2_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}
