import Foundation

/// Which class a failure belongs to (DESIGN, "Errors"), decided here and nowhere else. The callers
/// gather the evidence (libgit2's error and callbacks, git's stderr, a server's rejection, an AWS
/// API's error type) and word the message; the decision, and its order, is this file's tables,
/// which ClassificationTests read through case by case.
public enum Classification {
    // MARK: a transfer that failed as a whole

    /// What a failed fetch, listing or push left to go on.
    public struct Evidence: Sendable {
        /// The transport's own message (libgit2's error, or git's last stderr lines).
        public var message: String
        /// What the server printed (the side band's "remote: …" lines), if the message does not hold it.
        public var serverSaid: String = ""
        /// The transport knows the credential was refused (libgit2's GIT_EAUTH, git asking twice).
        public var credentialRefused = false
        /// The error came from the SSH layer, from TLS, from the network, from a non-fast-forward, or from
        /// reading objects (libgit2's error class says so; git's stderr does not).
        public var ssh = false
        public var certificate = false
        public var network = false
        public var nonFastForward = false
        public var objectDatabase = false
        /// libgit2's object database said "not found": an object the cache's history names is missing.
        public var objectMissing = false
        /// The local repository the operation read, when it read one: only then can the cache be damaged.
        public var cachePath: String?

        public init(message: String, serverSaid: String = "") {
            self.message = message
            self.serverSaid = serverSaid
        }
    }

    /// Why it failed, finer than the class, so each transport can say what to do.
    public enum Cause: String, Sendable, CaseIterable {
        case redirected, credentialRefused, hostKeyUntrusted, sshKeyLocked
        /// OpenSSH or libssh2 could not start on this machine: no passwd entry for the uid, a key file
        /// it cannot read, a URL user that is not the credential's username.
        case noLocalUser, keyUnreadable, usernameConflict
        case diskFull, cacheUnwritable, cacheDamaged
        /// gitolite's access check refused the user before any git ran: `R any … DENIED` (no read
        /// access, or no such repository: gitolite does not say which), `W any … DENIED` (read only).
        case deniedRead, deniedWrite
        case tooLarge, readOnly, notFound, tls, nonFastForward, network

        public var errorClass: ErrorClass {
            switch self {
            case .redirected, .noLocalUser, .keyUnreadable, .usernameConflict: return .config
            case .deniedRead: return .notFound
            case .deniedWrite: return .readOnly
            case .credentialRefused, .sshKeyLocked: return .auth
            case .hostKeyUntrusted: return .hostKey
            case .diskFull, .cacheDamaged: return .internal
            case .cacheUnwritable: return .config
            case .tooLarge: return .tooLarge
            case .readOnly: return .readOnly
            case .notFound: return .notFound
            case .tls: return .tls
            case .nonFastForward: return .rejected
            case .network: return .network
            }
        }
    }

    /// The rules in the order they are tried: the first that matches decides. A refused credential comes
    /// before a redirect (libgit2's "too many redirects or authentication replays" is a refusal) and
    /// before local permissions (ssh's "Permission denied (publickey)"); faults of this machine come
    /// before the server's "not found" (a damaged cache says "object not found").
    static let transferRules: [(cause: Cause, matches: @Sendable (Evidence, _ own: String, _ all: String) -> Bool)] = [
        // This machine's SSH setup, before anything the server could have said: OpenSSH prints these
        // and then "Permission denied (publickey)" or git's "Could not read from remote repository".
        (.noLocalUser, { _, own, _ in own.contains("no user exists for uid") }),
        (.keyUnreadable, { _, own, _ in
            (own.contains("load key") && own.contains("permission denied")) || own.contains("unable to open private key file") }),
        (.usernameConflict, { _, own, _ in own.contains("username does not match previous request") }),
        (.sshKeyLocked, { evidence, own, _ in
            evidence.ssh && (own.contains("private key") || own.contains("passphrase") || own.contains("unable to extract public key")) }),
        (.credentialRefused, { evidence, own, _ in
            evidence.credentialRefused || ["status code: 401", "status code: 403", "returned error: 401", "returned error: 403", "authentication",
                                           "could not read username", "could not read password", "permission denied (publickey",
                                           "terminal prompts disabled"].contains { own.contains($0) } }),
        (.redirected, { _, own, _ in
            own.contains("cannot redirect") || own.contains("unexpected redirect") || own.contains("redirect without location")
                || own.contains("returned error: 30") || own.contains("redirect") }),
        (.hostKeyUntrusted, { _, own, _ in
            ["host key verification failed", "remote host identification has changed", "host key is known", "host key for"].contains { own.contains($0) } }),
        (.diskFull, { _, own, _ in own.contains("no space left on device") || own.contains("disk quota exceeded") }),
        (.cacheUnwritable, { _, own, _ in
            own.contains("permission denied") || own.contains("read-only file system") || own.contains("operation not permitted") }),
        (.cacheDamaged, { evidence, own, _ in
            evidence.cachePath != nil && (evidence.objectDatabase || damagePhrases.contains { own.contains($0) }) }),
        // gitolite's access check, before any git runs: "FATAL: R any REPO USER DENIED by fallthru".
        (.deniedRead, { _, _, all in gitoliteDenied(all, access: "r") }),
        (.deniedWrite, { _, _, all in gitoliteDenied(all, access: "w") }),
        (.tooLarge, { _, own, all in
            rejection(all).errorClass == .tooLarge || own.contains("status code: 413") || own.contains("returned error: 413") || all.contains("exceeds") }),
        (.readOnly, { _, own, _ in own.contains("service not enabled") }),
        (.notFound, { _, own, _ in
            ["status code: 404", "returned error: 404", "not found", "not exported", "does not appear to be a git repository", "no such file",
             "could not find repository", "no such repository"].contains { own.contains($0) } }),
        (.tls, { evidence, own, _ in evidence.certificate || own.contains("certificate") || own.contains("ssl") || own.contains("tls") }),
        (.nonFastForward, { evidence, _, _ in evidence.nonFastForward }),
        (.network, { evidence, own, _ in
            evidence.network || ["connect", "resolve", "timed out", "eof", "hung up", "could not read", "broken pipe"].contains { own.contains($0) } }),
    ]

    /// gitolite's refusal of `access` ("r" or "w") on the whole repository (`any` ref), in lowercased text.
    static func gitoliteDenied(_ text: String, access: String) -> Bool {
        text.contains("fatal: \(access) any ") && text.contains(" denied by ")
    }

    /// What reading a damaged object store says (a suspicion only: the cache is verified before it is called damaged).
    static let damagePhrases = ["corrupt", "hash mismatch", "failed to decompress", "inflate", "zlib", "bad object", "truncated",
                                "failed to read", "invalid object", "object not found", "packfile", "is not a valid", "failed to parse"]

    /// The cause of a failed transfer; nil when nothing matched (an internal error).
    public static func transfer(_ evidence: Evidence) -> Cause? {
        let own = evidence.message.lowercased()
        let all = own + " " + evidence.serverSaid.lowercased()
        return transferRules.first { $0.matches(evidence, own, all) }?.cause
    }

    /// The same, for faults of this machine only (a full disk, a cache it cannot write, damaged objects).
    public static func localFault(_ evidence: Evidence) -> Cause? {
        let local: Set<Cause> = [.diskFull, .cacheUnwritable, .cacheDamaged]
        let own = evidence.message.lowercased()
        return transferRules.first { local.contains($0.cause) && $0.matches(evidence, own, own) }?.cause
    }

    // MARK: one ref the server refused

    /// A server's rejection of a ref (its status and what it printed), with what to do about it.
    public static func rejection(_ text: String) -> (errorClass: ErrorClass, advice: String?) {
        let text = text.lowercased()
        for rule in rejectionRules where rule.phrases.contains(where: { phrase in phrase.allSatisfy { text.contains($0) } }) {
            return (rule.errorClass, rule.advice)
        }
        return (.rejected, nil)
    }

    /// Each rule: any phrase matches when all of its words are in the text.
    static let rejectionRules: [(errorClass: ErrorClass, phrases: [[String]], advice: String)] = [
        (.protected, [["gh006"], ["protected branch"]],
         "the branch is protected on the server; allow the mirror's account to push to it, or leave it out with refs:"),
        (.protected, [["gh013"], ["repository rule violations"], ["rule violation"]],
         "a repository ruleset refuses this update; add the mirror's account to the ruleset's bypass list"),
        (.protected, [["fatal: + refs/", " denied by "], ["fatal: d refs/", " denied by "]],
         "the server does not let the mirror's user rewind or delete this ref (gitolite: RW without +); set append_only: true on this secondary to keep its history and mirror the rewritten one beside it (refs/rewritten/…), or allow the mirror's user to rewind (gitolite: RW+)"),
        (.rejected, [["fatal: w refs/", " denied by "], ["fatal: c refs/", " denied by "]],
         "an access rule on the server denies this ref to the mirror's user; leave it out with refs:, or change the rule"),
        (.auth, [["workflow", "scope"]],
         "the token lacks the workflow scope needed to push .github/workflows files; add it to the token"),
        (.tooLarge, [["gh001"], ["file size limit"], ["large files detected"]],
         "a file exceeds the host's file size limit (GitHub: 100 MB); move it to Git LFS on the primary"),
        (.tooLarge, [["pack exceeds"], ["maximum allowed size"], ["too large"]],
         "the push exceeds the host's size limit (GitHub: 2 GiB per push); push the history in smaller steps"),
    ]

    // MARK: AWS APIs

    /// An AWS API's error type (`__type`, `x-amzn-ErrorType`); nil for those that are not a failure class of their own.
    public static func awsAPI(errorType: String) -> ErrorClass? {
        switch errorType {
        case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException": return .auth
        case "RepositoryLimitExceededException": return .tooLarge
        case "ThrottlingException", "TooManyRequestsException": return .rateLimited
        default: return nil
        }
    }

    // MARK: forges' REST APIs

    /// A GitHub, GitLab or Gitea API answer that is not a success (a rate limit is recognised before this).
    public static func forgeAPI(status: Int) -> ErrorClass {
        switch status {
        case 401, 403: return .auth
        case 404: return .notFound
        case 413: return .tooLarge
        case 429: return .rateLimited
        case 408, 500...599: return .network
        default: return .internal
        }
    }

    // MARK: what the classes mean

    /// A push-direction failure of this class, while a listing with the same credentials worked, means
    /// the server reads but refuses pushes.
    public static func refusesPushesOnly(_ errorClass: ErrorClass) -> Bool {
        [.auth, .notFound, .readOnly].contains(errorClass)
    }
}

extension ErrorClass {
    /// Failures that retrying soon does not heal: the daemon retries them slowly (at retry_cap).
    public var healsWithRetry: Bool {
        ![.auth, .hostKey, .config, .notFound, .readOnly].contains(self)
    }
}

extension Classification {
    /// The one wording of each cause, for every transport: what failed, where, and what to do. `detail`
    /// is what the transport said; `target`, the remote, where the transport's words do not name it;
    /// `cachePath`, the cache the operation read. A failure no rule explains is `internal`, as `unexplained`.
    public static func failure(_ cause: Cause?, detail: String, target: String? = nil, cachePath: String? = nil,
                               objectMissing: Bool = false, unexplained: String) -> SyncFailure {
        guard let cause else { return SyncFailure(.internal, unexplained) }
        let detail = oneLine(detail)
        let at = target.map { " for \($0)" } ?? ""
        let message: String
        switch cause {
        case .diskFull, .cacheUnwritable, .cacheDamaged:
            return localFailure(cause, detail, cachePath: cachePath, objectMissing: objectMissing)
        case .redirected:
            message = "the server redirected elsewhere (\(detail)); gitmirror sends credentials and pushes only to the configured scheme, host and port. Put the final URL in mirrors.yaml"
        case .noLocalUser:
            message = "OpenSSH refuses to run because this process's uid has no passwd entry (\(detail)): run gitmirror as a user the system knows (systemd: User= or DynamicUser=yes; a container: an /etc/passwd line for its uid)"
        case .keyUnreadable:
            message = "the SSH key cannot be read by the user gitmirror runs as (\(detail)): give that user read access to ssh_key (mode 0400 or 0600, owned by it)"
        case .usernameConflict:
            message = "the URL's user\(at) and the credential's username differ (\(detail)): make them the same, or leave the user out of one of them"
        case .deniedRead:
            message = "the server denies this user any read access to\(target.map { " \($0)" } ?? " the repository"): it does not exist, or the key's user has no rights on it (gitolite does not say which): \(detail). Check the repository's name and the server's access rules"
        case .deniedWrite:
            message = "the server refuses this user write access to \(target ?? "the repository"): \(detail). Give the key's user write access (gitolite: RW, or RW+ to allow rewinds)"
        case .sshKeyLocked:
            message = "the SSH key could not be unlocked (\(detail)): check ssh_key_passphrase_env or ssh_key_passphrase_file, or that ssh_key is an unencrypted ed25519 key"
        case .credentialRefused:
            message = "authentication failed\(at): \(detail) (check the token, password or key and its permissions)"
        case .hostKeyUntrusted:
            message = "the SSH host key\(target.map { " of \($0)" } ?? "") is not trusted by known_hosts (\(detail)): verify the host's fingerprint, then add it with ssh-keyscan"
        case .tooLarge:
            message = "the server refused the size of the push (\(detail)): \(rejection(detail).advice ?? "push the history in smaller steps, or raise the server's limit (receive.maxInputSize, the host's push size limit)")"
        case .readOnly:
            message = "\(target ?? "the server") serves this repository read-only: \(detail)"
        case .notFound:
            message = "the repository\(target.map { " \($0)" } ?? "") does not exist or is not visible to these credentials: \(detail)"
        case .tls:
            message = "TLS verification failed\(at): \(detail)"
        case .nonFastForward:
            message = "not a fast-forward: \(detail)"
        case .network:
            message = target.map { "the connection to \($0) failed: \(detail)" } ?? detail
        }
        return SyncFailure(cause.errorClass, message)
    }

    /// What a transport said, on one line: its lines joined with " | ", without git's generic advice
    /// ("Could not read from remote repository. Please make sure you have the correct access rights…")
    /// when anything else was said, and without a closing full stop (the message goes on after it).
    static func oneLine(_ text: String) -> String {
        let generic = ["fatal: could not read from remote repository.", "please make sure you have the correct access rights",
                       "and the repository exists."]
        let lines = text.split(whereSeparator: \.isNewline).flatMap { $0.components(separatedBy: " | ") }
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let telling = lines.filter { !generic.contains($0.lowercased()) }
        var joined = (telling.isEmpty ? lines : telling).joined(separator: " | ")
        while joined.hasSuffix(".") { joined.removeLast() }
        return joined
    }

    /// A fault of this machine rather than of the server (the cache's permissions, a full disk, damaged
    /// objects), or nil when `text` names none.
    public static func localFault(_ text: String, cachePath: String?, objectDatabase: Bool = false) -> SyncFailure? {
        var evidence = Evidence(message: text)
        evidence.cachePath = cachePath
        evidence.objectDatabase = objectDatabase
        return localFault(evidence).map { localFailure($0, text, cachePath: cachePath) }
    }

    /// The words for a local fault: where, and what to do.
    static func localFailure(_ cause: Cause, _ text: String, cachePath: String?, objectMissing: Bool = false) -> SyncFailure {
        let place = cachePath ?? "the cache"
        switch cause {
        case .diskFull:
            return SyncFailure(cause.errorClass, "no space left on the device holding \(place) (state_dir): free space there, then sync again")
        case .cacheUnwritable:
            return SyncFailure(cause.errorClass, "\(CacheAccess.describe(place)); run gitmirror as the user who owns state_dir, or give that user access to it")
        default:
            // A suspicion only (unless an object is missing): the supervisor verifies the cache before it calls it damaged.
            return SyncFailure(cause.errorClass, "reading the cache \(place) failed: \(text)", cacheDamage: CacheDamage(text, objectMissing: objectMissing))
        }
    }
}
