import Foundation
import Yams

/// A repository and its remotes.
extension ConfigWalker {
    mutating func mirror(_ node: Node, defaults: Policy, credentials: [String: CredentialSpec], credentialNames: Set<String>) -> Mirror? {
        guard let pairs = mapping(node, allowed: ["name", "primary", "secondaries", "defaults", "interval"], what: "a repository") else { return nil }
        var name: String?
        var interval: TimeInterval?
        var primaryNode: Node?
        var secondariesNode: Node?
        var policy = defaults
        for (key, _, value) in pairs {
            switch key {
            case "name": name = self.name(value, "repository name")
            case "primary": primaryNode = value
            case "secondaries": secondariesNode = value
            case "defaults": policy = self.policy(value, inheriting: defaults, what: "repository defaults")
            case "interval": interval = minimumDuration(value, "interval", at: 10)
            default: break
            }
        }
        if pairs.first(where: { $0.key == "name" }) == nil { report(node, "a repository needs a 'name:'") }
        if primaryNode == nil { report(node, "repository '\(name ?? "?")' needs a 'primary:' URL") }
        // Without a primary the secondaries are still checked: every problem is reported in one pass.
        let primary = primaryNode.flatMap { remote($0, role: .primary, defaults: policy, credentials: credentials, credentialNames: credentialNames) }
        guard let secondariesNode else {
            report(node, "repository '\(name ?? "?")' needs 'secondaries:' (a list of remotes to mirror to)")
            return nil
        }
        guard case .sequence(let items) = secondariesNode, !items.isEmpty else {
            report(secondariesNode, "secondaries must be a non-empty list of remotes, each with a name and a url")
            return nil
        }
        var secondaries: [RemoteSpec] = []
        var seen: [String: Node] = [:]
        for item in items {
            guard let secondary = remote(item, role: .secondary, defaults: policy, credentials: credentials, credentialNames: credentialNames) else { continue }
            if secondary.name == "primary" {
                report(item, "'primary' is reserved for the primary remote; choose another secondary name")
                continue
            }
            if let previous = seen[secondary.name] {
                report(item, "duplicate secondary name '\(secondary.name)' (first defined at line \(previous.mark?.line ?? 0))")
                continue
            }
            if let primary, primary.url.identity == secondary.url.identity {
                report(item, "secondary '\(secondary.name)' is the primary itself (\(secondary.url)); a repository cannot mirror onto itself")
                continue
            }
            if let clash = secondaries.first(where: { $0.url.identity == secondary.url.identity }) {
                report(item, "secondary '\(secondary.name)' points at the same repository as '\(clash.name)'")
                continue
            }
            seen[secondary.name] = item
            if let name { remoteNodes["\(name)/\(secondary.name)"] = item }
            secondaries.append(secondary)
        }
        if let primary, secondaries.contains(where: \.policy.lfs), primary.url.scheme == .ssh || primary.url.scheme == .git, let primaryNode {
            report(primaryNode, "a secondary has lfs: true, but the primary is \(primary.url.scheme.rawValue): its LFS objects are read over HTTPS; give the primary an https:// (or local) address")
        }
        guard let name, let primary, secondaries.count == items.count else { return nil }
        return Mirror(name: name, primary: primary, secondaries: secondaries, interval: interval)
    }

    mutating func remote(_ node: Node, role: Role, defaults: Policy, credentials: [String: CredentialSpec], credentialNames: Set<String>) -> RemoteSpec? {
        if role == .primary, case .scalar = node {
            guard let url = url(node, allowInsecure: false) else { return nil }
            var spec = RemoteSpec(name: "primary", role: .primary, url: url, credentialName: nil, policy: defaults)
            if url.codeCommit == nil, let kind = ForgeKind.known(host: url.host), let host = url.host {
                spec.forge = kind.apiRoot(host: host, port: url.scheme == .https ? url.port : nil).map { ForgeEndpoint(kind: kind, api: $0) }
            }
            if defaults.changeCheck == .api && spec.forge == nil {
                report(node, "change_check: api (from defaults:) asks the primary's forge whether anything changed, and \(url.display) is on no forge gitmirror knows: write the primary as a mapping with forge: and api:, or set change_check: none")
            }
            return spec
        }
        let policyKeys = role == .secondary ? ["refs", "force", "append_only", "prune", "max_deletes", "timeout", "stall_timeout", "lfs"]
                                            : ["timeout", "stall_timeout", "change_check", "verify_interval"]
        let keys = (role == .secondary ? ["name", "create", "visibility"] : []) + ["url", "codecommit", "endpoint", "credentials", "allow_insecure", "forge", "api"] + policyKeys
        guard let pairs = mapping(node, allowed: keys, what: role == .primary ? "the primary" : "a secondary") else { return nil }
        var name: String? = role == .primary ? "primary" : nil
        var urlNode: Node?
        var credentialName: String?
        var allowInsecure = false
        var credentialOK = true
        var codeCommitNode: Node?
        var endpoint: String?
        var create = false
        var createNode: Node?
        var forgeKind: ForgeKind?
        var apiNode: Node?
        var visibility = "private"
        for (key, _, value) in pairs {
            switch key {
            case "name": name = self.name(value, "secondary name")
            case "url": urlNode = value
            case "codecommit": codeCommitNode = value
            case "endpoint": endpoint = string(value, "endpoint")
            case "create":
                createNode = value
                create = bool(value, "create") ?? false
            case "allow_insecure": allowInsecure = bool(value, "allow_insecure") ?? false
            case "forge":
                guard let text = string(value, "forge") else { continue }
                forgeKind = ForgeKind(rawValue: text.lowercased())
                if forgeKind == nil { report(value, "forge must be one of \(ForgeKind.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(text)')") }
            case "api": apiNode = value
            case "visibility":
                guard let text = string(value, "visibility") else { continue }
                if ["private", "internal", "public"].contains(text) { visibility = text } else {
                    report(value, "visibility must be private, internal or public (got '\(text)')")
                }
            case "credentials":
                guard let reference = string(value, "credentials") else { credentialOK = false; continue }
                if !credentialNames.contains(reference) {
                    let known = credentialNames.sorted()
                    report(value, "credential '\(reference)' is not defined under credentials:" + (known.isEmpty ? " (there are none)" : " (defined: \(known.joined(separator: ", ")))"))
                    credentialOK = false
                }
                credentialName = reference
            default: break
            }
        }
        var policy = defaults
        applyPolicy(pairs.filter { policyKeys.contains($0.key) }, to: &policy)
        if policy.force && policy.appendOnly, role == .secondary {
            report(pairs.first { $0.key == "append_only" || $0.key == "force" }?.keyNode ?? node,
                   "force: true overwrites the secondary's history and append_only: true keeps it; choose one for '\(name ?? "?")'")
        }
        if role == .secondary && pairs.first(where: { $0.key == "name" }) == nil { report(node, "a secondary needs a 'name:'") }
        var parsed: RemoteURL?
        if let codeCommitNode {
            if urlNode != nil { report(codeCommitNode, "give either url: or codecommit:, not both") }
            parsed = codeCommit(codeCommitNode, endpoint: endpoint)
        } else if let urlNode {
            parsed = url(urlNode, allowInsecure: allowInsecure, endpoint: endpoint)
        } else {
            report(node, "\(role == .primary ? "the primary" : "secondary '\(name ?? "?")'") needs a 'url:' (or 'codecommit: {region:, repository:}')")
            return nil
        }
        guard let url = parsed, let name, credentialOK else { return nil }
        let addressNode = urlNode ?? codeCommitNode!
        if let target = url.codeCommit, url.scheme == .ssh {
            report(addressNode, "CodeCommit over SSH cannot work here: IAM takes only RSA public keys for SSH, and gitmirror's SSH listing (libssh2 1.10) signs RSA only with SHA-1, which servers refuse; use HTTPS: url: https://git-codecommit.\(target.region).amazonaws.com/v1/repos/\(target.repository) with aws: credentials (SigV4), or an IAM user's HTTPS Git credentials (username: and password_env:)")
        }
        if let credentialName, let username = credentials[credentialName]?.username, let user = url.user, user != username {
            report(addressNode, "the URL logs in as '\(user)' but credential '\(credentialName)' has username: \(username); a connection logs in as one user: make them the same, or leave the user out of one of them")
        }
        // The forge API: stated, or known from the host (github.com, gitlab.com, codeberg.org).
        var forge: ForgeEndpoint?
        if url.codeCommit == nil, let kind = forgeKind ?? ForgeKind.known(host: url.host) {
            if let apiNode {
                forge = apiURL(apiNode, allowInsecure: allowInsecure).map { ForgeEndpoint(kind: kind, api: $0) }
            } else if let host = url.host {
                forge = kind.apiRoot(host: host, port: url.scheme == .https ? url.port : nil).map { ForgeEndpoint(kind: kind, api: $0) }
            }
        } else if let apiNode {
            report(apiNode, url.codeCommit != nil ? "api: is for GitHub, GitLab and Gitea; a CodeCommit address takes endpoint:"
                                                  : "api: needs forge: (github, gitlab or gitea) to say which API it is")
        }
        if role == .secondary && policy.lfs {
            let lfsNode = pairs.first { $0.key == "lfs" }?.value ?? addressNode
            if url.codeCommit != nil {
                report(lfsNode, "CodeCommit does not store Git LFS objects: with lfs: true its refs would point at objects it cannot serve; set lfs: false on '\(name)' (or mirror it without LFS)")
            } else if url.scheme == .ssh || url.scheme == .git {
                report(lfsNode, "lfs: true needs an https:// (or local) address: LFS objects travel over the server's HTTPS batch API, and this one is \(url.scheme.rawValue)")
            }
        }
        if role == .primary && policy.changeCheck == .api && forge == nil {
            let node = pairs.first { $0.key == "change_check" }?.value ?? addressNode
            report(node, "change_check: api asks the primary's forge whether anything changed, and \(url.display) is on no forge gitmirror knows: set forge: (github, gitlab or gitea) and api: for a self-hosted server, or use change_check: none")
        }
        if create && url.codeCommit == nil && forge == nil, let createNode {
            report(createNode, "create: true needs an API that creates repositories: CodeCommit, or a forge (set forge: github, gitlab or gitea, and api: for a self-hosted server); otherwise create the repository by hand")
        }
        if let credentialName, let spec = credentials[credentialName] {
            if spec.aws != nil && (url.codeCommit == nil || url.scheme != .https) {
                report(addressNode, "credential '\(credentialName)' signs with AWS credentials, which only CodeCommit over HTTPS accepts; this URL is not a CodeCommit HTTPS address")
            } else if spec.sshKey != nil && url.scheme != .ssh {
                report(addressNode, "credential '\(credentialName)' is an SSH key but this URL is \(url.scheme.rawValue); use an ssh:// or user@host:path URL")
            } else if spec.secret != nil && spec.sshKey == nil && url.scheme == .ssh {
                report(addressNode, "credential '\(credentialName)' is a token or password but this URL is SSH; use https:// or an ssh_key credential")
            }
        }
        return RemoteSpec(name: name, role: role, url: url, credentialName: credentialName, policy: policy, create: create, forge: forge,
                          visibility: visibility)
    }

    /// A forge's API root: http(s), no query, plain http only on loopback or with allow_insecure.
    mutating func apiURL(_ node: Node, allowInsecure: Bool) -> URL? {
        guard let text = string(node, "api") else { return nil }
        var trimmed = text
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let url = URL(string: trimmed), url.scheme == "https" || url.scheme == "http", let host = url.host, !host.isEmpty,
              url.query == nil, url.user == nil else {
            report(node, "api must be the API's root URL, such as https://api.github.com, https://gitlab.example.com/api/v4 or https://gitea.example.com/api/v1 (got '\(text)')")
            return nil
        }
        if url.scheme == "http" && !isLoopback(host) && !allowInsecure {
            report(node, "http:// sends the API token in clear text; use https://, or set allow_insecure: true")
            return nil
        }
        return url
    }

}
