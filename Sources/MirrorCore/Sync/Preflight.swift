import Foundation
import Git

/// `gitmirror doctor`: what a first sync would meet at every remote, checked without changing anything.
public struct Preflight: Sendable {
    public struct Finding: Codable, Sendable {
        public var repository: String
        public var remote: String
        public var role: Role
        public var url: String
        /// Where the credential comes from ("ssh key …", "token from $FORGE_TOKEN", "AWS: profile mirror", "none").
        public var credentials: String
        /// "ok", "refused", "n/a" (local paths), or the failure.
        public var connect: String
        /// "ok (12 refs, default branch main)", "missing; create: true will create it", or the failure.
        public var access: String
        public var details: [String] = []
        public var failure: SyncFailure?
        public var advice: String?

        public var wouldFail: Bool { failure != nil }
    }

    public let config: Config
    public let workers: Workers
    public let credentials: CredentialResolver

    public init(config: Config, workers: Workers, credentials: CredentialResolver) {
        self.config = config
        self.workers = workers
        self.credentials = credentials
    }

    public func check(_ mirrors: [Mirror]) -> [Finding] {
        let jobs = mirrors.flatMap { mirror in ([mirror.primary] + mirror.secondaries).map { (mirror.name, $0) } }
        return concurrently(jobs.count, limit: max(config.maxParallelPushes, 2)) { index in
            self.check(repository: jobs[index].0, remote: jobs[index].1)
        }
    }

    func check(repository: String, remote: RemoteSpec) -> Finding {
        var finding = Finding(repository: repository, remote: remote.name, role: remote.role, url: remote.url.display,
                              credentials: describeCredentials(remote), connect: "n/a", access: "")
        if let target = remote.url.codeCommit {
            finding.details.append("CodeCommit \(target.repository) in \(target.region)\(target.fips ? " (FIPS)" : "")")
        }
        // Pushes go through git's own transfer (and SSH pushes through OpenSSH): both must be installed.
        if remote.role == .secondary {
            for tool in Self.toolsNeeded(for: remote) where Self.locate(tool) == nil {
                finding.failure = SyncFailure(.config, "\(tool) is not installed or not in PATH; gitmirror pushes with git's own transfer\(tool == "ssh" ? " and OpenSSH" : "")")
                finding.advice = "install it (Debian: apt-get install \(tool == "ssh" ? "openssh-client" : "git"))"
                finding.access = "not tried"
                return finding
            }
        }
        // DNS and TCP first: the cheapest question, and the clearest answer when it fails.
        if let host = remote.url.host, remote.url.scheme != .file {
            let port = remote.url.port ?? defaultPort(remote.url.scheme)
            switch Socket.probe(host: host, port: port, timeout: 5) {
            case .success(let address): finding.connect = "ok (\(address):\(port))"
            case .failure(let failure):
                finding.connect = failure.message
                finding.failure = failure
                finding.access = "not tried"
                finding.advice = Self.advice(for: failure, remote: remote)
                return finding
            }
        }
        let endpoint: Endpoint
        do {
            endpoint = try credentials.endpoint(for: remote, config: config)
            if case .aws(let keys, _, _, _)? = endpoint.credential, let target = remote.url.codeCommit {
                finding.credentials = "AWS: \(keys.source)"
                // SigV4 signatures expire after 15 minutes: a skewed clock fails every push.
                let api = CodeCommitAPI(region: target.region, credentials: keys, environment: credentials.environment)
                if let probe = try? api.probe(target.repository), let skew = probe.skew {
                    finding.details.append(String(format: "clock skew %+.0fs", skew))
                    if abs(skew) > 300 {
                        finding.failure = SyncFailure(.auth, String(format: "this machine's clock is %.0f seconds off AWS's; SigV4 signatures will be refused", skew))
                        finding.advice = "synchronize the clock (chrony, systemd-timesyncd)"
                    }
                } else {
                    finding.details.append("clock skew unknown (the CodeCommit API did not answer)")
                }
            }
        } catch {
            finding.failure = error
            finding.access = "not tried"
            finding.advice = Self.advice(for: error, remote: remote)
            return finding
        }
        let limits = Workers.Limits(timeout: min(remote.policy.timeout, 60), stall: min(remote.policy.stallTimeout, 20))
        if remote.url.scheme == .ssh, endpoint.credential?.isLockedKey != true, !checkSSHLogin(endpoint, repository: repository, remote: remote,
                                                                                              limits: limits, finding: &finding) {
            return finding
        }
        switch Result(catching: { () throws(SyncFailure) in try workers.run(ListJob(remote: endpoint), for: repository, limits: limits) }) {
        case .success(let result):
            let refs = result.heads.filter { $0.name.hasPrefix("refs/") }.count
            finding.access = "ok (\(refs) ref\(refs == 1 ? "" : "s")\(result.defaultBranch.map { ", default branch \($0.replacingOccurrences(of: "refs/heads/", with: ""))" } ?? ""))"
            if remote.role == .primary && refs == 0 {
                finding.failure = SyncFailure(.primaryEmpty, "the primary advertises no refs; a sync would stop here")
                finding.advice = "push the repository's branches to the primary first"
            }
            if remote.role == .secondary { checkPush(endpoint, repository: repository, remote: remote, limits: limits, finding: &finding) }
        case .failure(let failure):
            if failure.errorClass == .notFound && remote.create && (remote.url.codeCommit != nil || remote.forge != nil) {
                finding.access = "missing; create: true will create it"
            } else {
                finding.failure = SyncFailure(failure.errorClass, credentials.redactor.redact(failure.message))
                finding.access = "\(failure.errorClass.rawValue)"
                finding.advice = Self.advice(for: failure, remote: remote)
            }
        }
        return finding
    }

    /// An SSH remote: the login a push makes (OpenSSH, the key, its options, this process's user), and
    /// on gitolite its own word on the repository — asked before any git command, which would create a
    /// wild repository. False when the finding is complete (a failure, or a repository gitolite will create).
    func checkSSHLogin(_ endpoint: Endpoint, repository: String, remote: RemoteSpec, limits: Workers.Limits, finding: inout Finding) -> Bool {
        switch Result(catching: { () throws(SyncFailure) in try workers.run(SSHAccessJob(remote: endpoint), for: repository, limits: limits) }) {
        case .failure(let failure):
            finding.failure = SyncFailure(failure.errorClass, "logging in as a push does: \(credentials.redactor.redact(failure.message))")
            finding.access = "not tried"
            finding.advice = Self.advice(for: failure, remote: remote)
            return false
        case .success(let access):
            guard let gitolite = access.gitolite else { return true }
            finding.details.append("gitolite")
            guard !gitolite.exists else { return true }
            if let pattern = gitolite.createPattern {
                finding.access = "missing; gitolite creates it at the first sync (C on \(pattern))"
            } else {
                finding.failure = SyncFailure(.notFound, "gitolite's info lists no repository \(gitolite.repository) for this user and no pattern it may create it under: it does not exist, or the key's user has no rights on it")
                finding.access = "not_found"
                finding.advice = "check the repository's name and the server's access rules (gitolite.conf)"
            }
            return false
        }
    }

    /// A secondary must take pushes, not only be readable: ask its receive-pack for its advertisement
    /// (git daemon without receive-pack, a read-only token or deploy key, a CodeCommit policy without
    /// GitPush all refuse here, before any pack is sent). Nothing is pushed.
    func checkPush(_ endpoint: Endpoint, repository: String, remote: RemoteSpec, limits: Workers.Limits, finding: inout Finding) {
        switch Result(catching: { () throws(SyncFailure) in try workers.run(PushAccessJob(remote: endpoint), for: repository, limits: limits) }) {
        case .success:
            finding.access += ", push ok"
        case .failure(let failure) where Classification.refusesPushesOnly(failure.errorClass):
            finding.access = "read-only"
            finding.failure = SyncFailure(.readOnly, "the repository can be read but refuses pushes: \(credentials.redactor.redact(failure.message))")
            finding.advice = Self.advice(for: finding.failure!, remote: remote)
        case .failure(let failure):
            finding.access += ", push \(failure.errorClass.rawValue)"
            finding.failure = SyncFailure(failure.errorClass, "asking to push: \(credentials.redactor.redact(failure.message))")
            finding.advice = Self.advice(for: failure, remote: remote)
        }
    }

    static func toolsNeeded(for remote: RemoteSpec) -> [String] {
        remote.url.scheme == .ssh ? ["git", "ssh"] : ["git"]
    }

    /// The program's path in PATH, if it is there.
    static func locate(_ program: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        for directory in (path ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    func describeCredentials(_ remote: RemoteSpec) -> String {
        guard let name = remote.credentialName, let spec = config.credentials[name] else {
            return remote.url.codeCommit != nil && remote.url.scheme == .https ? "AWS default chain" : "none"
        }
        if let key = spec.sshKey { return "\(name): ssh key \(key.path)" }
        if let secret = spec.secret { return "\(name): \(secret)" }
        if let aws = spec.aws {
            if let role = aws.roleArn { return "\(name): AWS role \(role)" }
            return "\(name): AWS \(aws.profile.map { "profile \($0)" } ?? "default chain")"
        }
        return name
    }

    func defaultPort(_ scheme: RemoteURL.Scheme) -> Int {
        switch scheme {
        case .https: return 443
        case .http: return 80
        case .ssh: return 22
        case .git: return 9418
        case .file: return 0
        }
    }

    /// What to do about a failure of this class on this remote (doctor, the status page).
    public static func advice(for failure: SyncFailure, remote: RemoteSpec) -> String {
        let credential = remote.credentialName.map { "credential '\($0)'" } ?? "a credential"
        switch failure.errorClass {
        case .auth: return "check that \(credential) is current and may \(remote.role == .primary ? "read" : "push to") this repository"
        case .hostKey: return "confirm the fingerprint with the server's owner, then add the key to known_hosts (ssh-keyscan)"
        case .tls: return "add the server's CA with ca_file (AWS_CA_BUNDLE for CodeCommit), or fix the server's certificate"
        case .notFound: return remote.url.codeCommit != nil || remote.forge != nil ? "create the repository, or set create: true on this secondary" : "create the repository on the server, or correct the URL"
        case .network: return "check the host name, DNS, firewalls and proxies between this machine and the server"
        case .timeout: return "the server accepted the connection but did not answer; check it is a git server and is healthy"
        case .config: return "fix mirrors.yaml or the environment as the message says"
        case .readOnly:
            switch remote.url.scheme {
            case .git: return "git daemon serves receive-pack only when enabled (--enable=receive-pack, or daemon.receivepack=true in the repository); or push over SSH or HTTPS"
            case .ssh: return "give \(credential)'s key write access (a deploy key with write access, or a user who may push)"
            default:
                return remote.url.codeCommit != nil ? "allow codecommit:GitPush on this repository to the role or user \(credential) signs as"
                    : "give \(credential) write access (a token with push / contents:write scope, or a user who may push)"
            }
        default: return "see the message"
        }
    }
}
