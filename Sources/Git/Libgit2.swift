import CLibgit2
import CGitTee

/// Process-wide libgit2 setup. Call `initialize()` once before any other call.
public enum Libgit2 {
    /// What the process-wide setup did: nil, or the setting libgit2 refused.
    private static let once: GitError? = {
        // Loaded now, not linked (gitmirror_git2.h): a process that cannot load it says why here.
        var loadError: UnsafePointer<CChar>?
        guard gitmirror_git2_load(&loadError) == 0 else {
            return GitError(function: "dlopen", code: -1, errorClass: 0,
                            message: loadError.map { String(cString: $0) } ?? "libgit2 could not be loaded")
        }
        git_libgit2_init()
        do throws(GitError) {
            // Never read the user's or the system's git configuration: an
            // `url.<x>.insteadOf` there would silently send a push elsewhere.
            for level in [GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_PROGRAMDATA] {
                try check("git_libgit2_opts(SET_SEARCH_PATH)", gitmirror_opts_set_search_path(level.rawValue, ""))
            }
            try check("git_libgit2_opts(SET_USER_AGENT)", gitmirror_opts_set_user_agent("gitmirror"))
            // The cache holds the only copy of every backup ref: make its writes durable.
            try check("git_libgit2_opts(ENABLE_FSYNC_GITDIR)", gitmirror_opts_enable_fsync(1))
            return nil
        } catch {
            return error
        }
    }()

    public static func initialize() { _ = once }

    /// Makes libgit2's setup skip the system's CA file (~10 ms of CPU in every process, mbedTLS
    /// parsing it) until an HTTPS remote needs it (`Remote` loads it then). For a worker, before
    /// `initialize()`: most of its jobs never speak TLS.
    public static func deferSystemCertificates() { gitmirror_tls_defer_system_store() }

    /// Whether the system's CA file is still to be loaded.
    public static var systemCertificatesDeferred: Bool { gitmirror_tls_system_store_deferred() != 0 }

    /// Loads the system's CA file now if its load was deferred (and no `ca_file` store replaced it).
    static func useSystemCertificates() throws(GitError) {
        try check("git_libgit2_opts(SET_SSL_CERT_LOCATIONS)", gitmirror_tls_use_system_store())
    }

    /// Why libgit2 could not be set up as gitmirror needs it (a refused setting): nothing may then run,
    /// since a search path left in place would read the user's git configuration. Nil when all is well.
    public static var setupFailure: GitError? { once }

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
