import Foundation
import Yams

/// The daemon's settings, the policies and the credentials.
extension ConfigWalker {
    mutating func daemon(_ node: Node) -> DaemonSettings {
        var settings = DaemonSettings()
        let keys = ["listen", "interval", "max_parallel_repositories", "max_connections_per_host", "max_connections", "shutdown_grace",
                    "retry_base", "retry_cap", "start_spread", "discover_interval", "hooks", "notify", "peers", "http", "ui"]
        guard let pairs = mapping(node, allowed: keys, what: "daemon") else { return settings }
        for (key, _, value) in pairs {
            switch key {
            case "listen":
                guard let text = string(value, "listen") else { continue }
                if let problem = listenProblem(text) {
                    report(value, problem)
                } else {
                    settings.listen = text
                }
            case "interval": if let seconds = minimumDuration(value, "interval", at: 10) { settings.interval = seconds }
            case "max_parallel_repositories": if let number = integer(value, key, minimum: 1) { settings.maxParallelRepositories = number }
            case "max_connections_per_host": if let number = integer(value, key, minimum: 1) { settings.maxConnectionsPerHost = number }
            case "max_connections": if let number = integer(value, key, minimum: 1) { settings.maxConnections = number }
            case "shutdown_grace": if let seconds = duration(value, key) { settings.shutdownGrace = seconds }
            case "retry_base": if let seconds = duration(value, key) { settings.retryBase = seconds }
            case "retry_cap": if let seconds = duration(value, key) { settings.retryCap = seconds }
            case "start_spread": if let seconds = duration(value, key, minimum: 0) { settings.startSpread = seconds }
            case "discover_interval": if let seconds = minimumDuration(value, key, at: 60) { settings.discoverInterval = seconds }
            case "hooks":
                let hookKeys = ["github_secret_env", "github_secret_file", "gitlab_token_env", "gitlab_token_file",
                                "gitea_secret_env", "gitea_secret_file", "sync_token_env", "sync_token_file"]
                guard let hooks = mapping(value, allowed: hookKeys, what: "daemon.hooks") else { continue }
                settings.githubSecret = secretReference(hooks, prefix: "github_secret")
                settings.gitlabToken = secretReference(hooks, prefix: "gitlab_token")
                settings.giteaSecret = secretReference(hooks, prefix: "gitea_secret")
                settings.syncToken = secretReference(hooks, prefix: "sync_token")
            case "notify":
                guard case .sequence(let items) = value else {
                    report(value, "notify must be a list of {url:, secret_env:}")
                    continue
                }
                for item in items {
                    let keys = ["url", "url_env", "url_file", "secret_env", "secret_file", "format"]
                    guard let target = mapping(item, allowed: keys, what: "a notify target") else { continue }
                    var entry = NotifyTarget(url: nil, urlSecret: secretReference(target, prefix: "url"), secret: secretReference(target, prefix: "secret"))
                    if let formatNode = target.first(where: { $0.key == "format" })?.value, let text = string(formatNode, "format") {
                        guard let format = NotifyFormat(rawValue: text) else {
                            report(formatNode, "format must be one of \(NotifyFormat.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(text)')")
                            continue
                        }
                        entry.format = format
                    }
                    let urlKeys = target.filter { ["url", "url_env", "url_file"].contains($0.key) }
                    guard urlKeys.count == 1 else {
                        report(item, urlKeys.isEmpty ? "a notify target needs a url: (or url_env / url_file, for a URL that is itself a secret such as Slack's)"
                                                     : "a notify target takes one of url, url_env and url_file")
                        continue
                    }
                    if let urlNode = target.first(where: { $0.key == "url" })?.value {
                        guard let text = string(urlNode, "url") else { continue }
                        if let problem = notifyURLProblem(text) {
                            report(urlNode, problem)
                            continue
                        }
                        entry.url = URL(string: text)
                    }
                    settings.notify.append(entry)
                }
            case "ui":
                settings.ui = ui(value)
            case "http":
                let httpKeys = ["header_timeout", "body_timeout", "idle_timeout", "max_connections", "max_connections_per_peer"]
                guard let limits = mapping(value, allowed: httpKeys, what: "daemon.http") else { continue }
                for (limitKey, _, limitValue) in limits {
                    switch limitKey {
                    case "header_timeout": if let seconds = minimumDuration(limitValue, limitKey, at: 1) { settings.http.headerTimeout = seconds }
                    case "body_timeout": if let seconds = minimumDuration(limitValue, limitKey, at: 1) { settings.http.bodyTimeout = seconds }
                    case "idle_timeout": if let seconds = minimumDuration(limitValue, limitKey, at: 1) { settings.http.idleTimeout = seconds }
                    case "max_connections": if let number = integer(limitValue, limitKey, minimum: 4) { settings.http.maxConnections = number }
                    case "max_connections_per_peer": if let number = integer(limitValue, limitKey, minimum: 1) { settings.http.maxConnectionsPerPeer = number }
                    default: break
                    }
                }
            case "peers":
                guard case .sequence(let items) = value else {
                    report(value, "peers must be a list of base URLs, entry i being shard i's (for example http://gitmirror-0.gitmirror-peers:9150)")
                    continue
                }
                for item in items {
                    guard let text = string(item, "a peer") else { continue }
                    guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", let host = url.host, !host.isEmpty,
                          url.query == nil, url.user == nil else {
                        report(item, "a peer must be an http(s) base URL such as http://gitmirror-0.gitmirror-peers:9150 (got '\(text)')")
                        continue
                    }
                    var base = text
                    while base.hasSuffix("/") { base.removeLast() }
                    settings.peers.append(URL(string: base)!)
                }
            default: break
            }
        }
        return settings
    }

    /// `daemon.ui:`: who may open the status page. `access: any` without a way to sign in would show
    /// every repository's URLs and errors to whoever reaches the port: refused.
    mutating func ui(_ node: Node) -> UISettings {
        var settings = UISettings()
        guard let pairs = mapping(node, allowed: ["access", "users_file", "token_file"], what: "daemon.ui") else { return settings }
        var accessNode: Node?
        // A sign-in file named but missing is reported as such, not again as no sign-in at all.
        let signInNamed = pairs.contains { $0.key == "users_file" || $0.key == "token_file" }
        for (key, _, value) in pairs {
            switch key {
            case "access":
                guard let text = string(value, "access") else { continue }
                guard let access = UISettings.Access(rawValue: text) else {
                    report(value, "daemon.ui.access must be \(UISettings.Access.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(text)')")
                    continue
                }
                settings.access = access
                accessNode = value
            case "users_file": settings.usersFile = existingFile(value, "daemon.ui.users_file")
            case "token_file": settings.tokenFile = existingFile(value, "daemon.ui.token_file")
            default: break
            }
        }
        if settings.access == .any, !signInNamed, let accessNode {
            report(accessNode, "daemon.ui.access: any shows repository names, URLs and errors to whoever reaches the port: "
                   + "set daemon.ui.users_file (htpasswd -B) or daemon.ui.token_file, or keep access: loopback")
        }
        return settings
    }

    mutating func policy(_ node: Node, inheriting parent: Policy, what: String, extraKeys: [String] = []) -> Policy {
        var policy = parent
        let keys = ["refs", "force", "append_only", "prune", "max_deletes", "timeout", "stall_timeout", "lfs", "change_check", "verify_interval"]
        guard let pairs = mapping(node, allowed: keys + extraKeys, what: what) else { return policy }
        applyPolicy(pairs, to: &policy)
        return policy
    }

    mutating func applyPolicy(_ pairs: [(key: String, keyNode: Node, value: Node)], to policy: inout Policy) {
        for (key, _, value) in pairs {
            switch key {
            case "refs": if let refs = refPatterns(value), !refs.isEmpty { policy.refs = refs }
            case "force": if let flag = bool(value, "force") { policy.force = flag }
            case "append_only": if let flag = bool(value, "append_only") { policy.appendOnly = flag }
            case "prune": if let flag = bool(value, "prune") { policy.prune = flag }
            case "max_deletes": if let number = integer(value, "max_deletes", minimum: 0) { policy.maxDeletes = number }
            case "timeout": if let seconds = duration(value, "timeout") { policy.timeout = seconds }
            case "stall_timeout": if let seconds = duration(value, "stall_timeout") { policy.stallTimeout = seconds }
            case "lfs": if let flag = bool(value, "lfs") { policy.lfs = flag }
            case "change_check":
                guard let text = string(value, "change_check") else { continue }
                if let mode = ChangeCheckMode(rawValue: text) { policy.changeCheck = mode } else {
                    report(value, "change_check must be \(ChangeCheckMode.allCases.map(\.rawValue).joined(separator: " or ")) (got '\(text)')")
                }
            case "verify_interval": if let seconds = minimumDuration(value, "verify_interval", at: 60) { policy.verifyInterval = seconds }
            default: break
            }
        }
    }

    mutating func credential(name: String, _ node: Node) -> CredentialSpec? {
        let keys = ["username", "ssh_key", "ssh_key_passphrase_env", "ssh_key_passphrase_file", "known_hosts",
                    "token_env", "token_file", "password_env", "password_file", "ca_file", "aws"]
        guard let pairs = mapping(node, allowed: keys, what: "credential '\(name)'") else { return nil }
        var spec = CredentialSpec(name: name)
        var secretNodes: [Node] = []
        for (key, keyNode, value) in pairs {
            switch key {
            case "username": spec.username = string(value, "username")
            case "ssh_key":
                spec.sshKey = secretFile(value, "ssh_key")
                if let key = spec.sshKey, let refusal = SSHKeyFile.refusal(at: key) { report(value, refusal) }
            case "ssh_key_passphrase_env": if let variable = environmentName(value, key) { spec.sshKeyPassphrase = .environment(variable) }
            case "ssh_key_passphrase_file": if let url = secretFile(value, key) { spec.sshKeyPassphrase = .file(url) }
            case "known_hosts": spec.knownHosts = existingFile(value, "known_hosts")
            case "token_env", "password_env":
                secretNodes.append(keyNode)
                if let variable = environmentName(value, key) { spec.secret = .environment(variable) }
            case "token_file", "password_file":
                secretNodes.append(keyNode)
                if let url = secretFile(value, key) { spec.secret = .file(url) }
            case "ca_file": spec.caFile = existingFile(value, "ca_file")
            case "aws":
                secretNodes.append(keyNode)
                spec.aws = aws(value, credential: name)
            default: break
            }
        }
        if secretNodes.count > 1 {
            report(secretNodes[1], "credential '\(name)' names more than one of token_env, token_file, password_env, password_file, aws; keep one")
        }
        return spec
    }

    mutating func aws(_ node: Node, credential: String) -> AWSCredentialSpec? {
        guard let pairs = mapping(node, allowed: ["profile", "role_arn", "external_id", "role_session_name"], what: "aws settings of credential '\(credential)'") else { return nil }
        var spec = AWSCredentialSpec()
        for (key, _, value) in pairs {
            switch key {
            case "profile": spec.profile = string(value, "profile")
            case "role_arn":
                guard let arn = string(value, "role_arn") else { continue }
                if !arn.hasPrefix("arn:aws") || !arn.contains(":role/") {
                    report(value, "role_arn must be an IAM role ARN such as arn:aws:iam::123456789012:role/mirror")
                } else {
                    spec.roleArn = arn
                }
            case "external_id": spec.externalId = string(value, "external_id")
            case "role_session_name": spec.roleSessionName = string(value, "role_session_name")
            default: break
            }
        }
        return spec
    }

    /// Why `ADDRESS:PORT` cannot be listened on, or nil.
    func listenProblem(_ text: String) -> String? { listenAddressProblem(text) }

    func notifyURLProblem(_ text: String) -> String? { MirrorCore.notifyURLProblem(text) }

    func isLoopback(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        return bare == "localhost" || bare == "::1" || bare.hasPrefix("127.")
    }

    mutating func environmentName(_ node: Node, _ what: String) -> String? {
        guard let text = string(node, what) else { return nil }
        guard text.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) != nil else {
            report(node, "\(what) must name an environment variable (letters, digits, '_'), not hold the secret itself")
            return nil
        }
        if requireEnvironment && (environment[text] ?? "").isEmpty {
            report(node, "\(what) names \(text), which is \(environment[text] == nil ? "not set" : "empty") in this environment; export it (or use the _file form) before starting gitmirror")
        }
        return text
    }

}
