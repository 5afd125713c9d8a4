import Foundation
import Yams

/// A discovery source and its remote templates.
extension ConfigWalker {
    /// One `discover:` entry.
    mutating func discoverySource(_ node: Node, defaults: Policy, credentials: [String: CredentialSpec], credentialNames: Set<String>) -> DiscoverySource? {
        let kinds = ["github", "gitlab", "gitea", "codecommit"]
        let keys = kinds + ["api", "credentials", "include", "exclude", "archived", "forks", "visibility", "subgroups", "name", "clone",
                            "primary", "secondaries", "defaults", "interval", "allow_insecure", "clone_host", "max_answer_size"]
        guard let pairs = mapping(node, allowed: keys, what: "a discover entry") else { return nil }
        let kindPairs = pairs.filter { kinds.contains($0.key) }
        guard kindPairs.count == 1, let kindPair = kindPairs.first else {
            report(kindPairs.dropFirst().first?.keyNode ?? node, kindPairs.isEmpty
                   ? "a discover entry needs one source: github: ORG_OR_USER, gitlab: GROUP, gitea: ORG_OR_USER or codecommit: REGION"
                   : "a discover entry takes one source; split \(kindPairs.map(\.key).joined(separator: " and ")) into two entries")
            return nil
        }
        guard let owner = string(kindPair.value, kindPair.key) else { return nil }
        var allowInsecure = false
        if let value = pairs.first(where: { $0.key == "allow_insecure" })?.value { allowInsecure = bool(value, "allow_insecure") ?? false }
        var policy = defaults
        if let value = pairs.first(where: { $0.key == "defaults" })?.value { policy = self.policy(value, inheriting: defaults, what: "the discover entry's defaults") }
        let apiNode = pairs.first { $0.key == "api" }?.value
        var unusable = false
        let kind: DiscoverySource.Kind
        if kindPair.key == "codecommit" {
            if let apiNode { report(apiNode, "a CodeCommit source takes no api: (its endpoint comes from AWS_ENDPOINT_URL_CODECOMMIT, as for the AWS SDKs)") }
            if owner.range(of: "^[a-z]{2}(-[a-z]+)+-[0-9]+$", options: .regularExpression) == nil {
                report(kindPair.value, "codecommit: takes an AWS region such as eu-west-1 (got '\(owner)')")
                unusable = true
            }
            kind = .codeCommit(region: owner)
        } else {
            let forgeKind = ForgeKind(rawValue: kindPair.key)!
            if owner.hasPrefix("/") || owner.hasSuffix("/") || owner.contains("//") || owner.contains(" ") || (forgeKind != .gitlab && owner.contains("/")) {
                report(kindPair.value, forgeKind == .gitlab ? "gitlab: takes a group's full path such as platform or platform/tools (got '\(owner)')"
                                                            : "\(kindPair.key): takes an organisation or user name such as acme (got '\(owner)')")
                return nil
            }
            // Without a usable API the rest is still checked: every problem is reported in one pass.
            var api: URL?
            if let apiNode {
                api = apiURL(apiNode, allowInsecure: allowInsecure)
            } else {
                switch forgeKind {
                case .github: api = URL(string: "https://api.github.com")
                case .gitlab: api = URL(string: "https://gitlab.com/api/v4")
                case .gitea:
                    report(kindPair.keyNode, "a gitea: source needs api: (the server's API root, such as https://gitea.example.com/api/v1 or https://codeberg.org/api/v1)")
                }
            }
            if api == nil { unusable = true }
            kind = .forge(ForgeEndpoint(kind: forgeKind, api: api ?? URL(string: "https://invalid.invalid")!))
        }
        var id = "\(kindPair.key):\(owner)"
        if case .forge(let endpoint) = kind, let host = endpoint.api.host, !["api.github.com", "gitlab.com"].contains(host) {
            id += "@\(host)\(endpoint.api.port.map { ":\($0)" } ?? "")"
        }
        var source = DiscoverySource(id: id, kind: kind, owner: owner, location: location(node))
        source.primaryPolicy = policy
        if case .codeCommit = kind, policy.changeCheck == .api {
            report(pairs.first { $0.key == "defaults" }?.value ?? node, "change_check: api needs a primary on GitHub, GitLab or Gitea; CodeCommit's repositories are listed with git (change_check: none)")
        }
        var secondariesNode: Node?
        for (key, keyNode, value) in pairs {
            switch key {
            case "credentials":
                guard let reference = string(value, "credentials") else { continue }
                guard credentialNames.contains(reference) else {
                    report(value, "credential '\(reference)' is not defined under credentials:")
                    continue
                }
                if let spec = credentials[reference] {
                    if case .codeCommit = kind, spec.aws == nil {
                        report(value, "a CodeCommit source lists repositories with AWS credentials; credential '\(reference)' has no aws:")
                    } else if case .forge = kind, spec.secret == nil {
                        report(value, "the \(kindPair.key) API takes a token; credential '\(reference)' has no token_env or token_file")
                    }
                }
                source.credentialName = reference
            case "include", "exclude":
                let patterns: [String]
                if case .sequence(let items) = value { patterns = items.compactMap { string($0, "a \(key) pattern") } }
                else if let one = string(value, key) { patterns = [one] } else { continue }
                if key == "include" { source.include = patterns } else { source.exclude = patterns }
            case "archived": source.archived = bool(value, key) ?? true
            case "forks": source.forks = bool(value, key) ?? true
            case "subgroups":
                source.subgroups = bool(value, key) ?? true
                if kindPair.key != "gitlab" { report(keyNode, "subgroups: is for gitlab: sources (groups have subgroups)") }
            case "visibility":
                let words: [String]
                if case .sequence(let items) = value { words = items.compactMap { string($0, "a visibility") } }
                else if let one = string(value, key) { words = [one] } else { continue }
                if let wrong = words.first(where: { !["public", "private", "internal", "all"].contains($0) }) {
                    report(value, "visibility takes public, private, internal or all (got '\(wrong)')")
                } else if !words.contains("all") {
                    source.visibility = Set(words)
                }
            case "name":
                guard let text = string(value, "name") else { continue }
                if let unknown = RemoteTemplate.unknownPlaceholders(in: text).first {
                    report(value, "unknown placeholder {\(unknown)} in name; use {name}, {path} or {owner}")
                } else if !text.contains("{") {
                    report(value, "name must contain {name}, {path} or {owner}: every discovered repository needs a name of its own")
                } else {
                    source.nameTemplate = text
                }
            case "clone":
                guard let text = string(value, "clone") else { continue }
                guard let clone = DiscoverySource.CloneProtocol(rawValue: text) else {
                    report(value, "clone must be https or ssh (got '\(text)')")
                    continue
                }
                if case .codeCommit = kind { report(value, "a CodeCommit source is cloned over HTTPS with AWS signing; leave clone: out") }
                source.clone = clone
            case "interval": source.interval = minimumDuration(value, "interval", at: 10)
            case "clone_host":
                let hosts: [String]
                if case .sequence(let items) = value { hosts = items.compactMap { string($0, "a clone host") } }
                else if let one = string(value, key) { hosts = [one] } else { continue }
                if case .codeCommit = kind { report(keyNode, "clone_host: is for github:, gitlab: and gitea: sources (CodeCommit's clone host follows its region)") }
                if let wrong = hosts.first(where: { $0.isEmpty || $0.contains(where: { ":/@ ".contains($0) }) }) {
                    report(value, "clone_host takes host names such as git.example.com, without scheme, port or path (got '\(wrong)')")
                    continue
                }
                source.cloneHosts = hosts.map { $0.lowercased() }
            case "max_answer_size":
                if let bytes = byteSize(value, key, minimum: 64 << 10) { source.maxAnswerSize = bytes }
            case "secondaries": secondariesNode = value
            default: break
            }
        }
        if let primaryNode = pairs.first(where: { $0.key == "primary" })?.value {
            source.primary = remoteTemplate(primaryNode, role: .primary, source: source, defaults: policy, credentials: credentials, credentialNames: credentialNames)
        }
        guard let secondariesNode, case .sequence(let items) = secondariesNode, !items.isEmpty else {
            report(secondariesNode ?? node, "a discover entry needs secondaries: (a list of remotes, each with a name and a url with {name} or {path})")
            return nil
        }
        var names: Set<String> = []
        for item in items {
            guard let template = remoteTemplate(item, role: .secondary, source: source, defaults: policy, credentials: credentials, credentialNames: credentialNames) else { continue }
            if template.spec.name == "primary" || !names.insert(template.spec.name).inserted {
                report(item, template.spec.name == "primary" ? "'primary' is reserved for the primary remote; choose another secondary name" : "duplicate secondary name '\(template.spec.name)'")
                continue
            }
            source.secondaries.append(template)
        }
        guard source.secondaries.count == items.count, !unusable else { return nil }
        return source
    }

    /// A remote whose url has placeholders: checked as a written remote would be, with a sample
    /// repository in place of `{name}`, `{path}` and `{owner}`; expanded for each discovered repository later.
    mutating func remoteTemplate(_ node: Node, role: Role, source: DiscoverySource, defaults: Policy, credentials: [String: CredentialSpec],
                                 credentialNames: Set<String>) -> RemoteTemplate? {
        guard case .mapping(let mapping) = node else {
            report(node, "\(role == .primary ? "primary" : "a secondary") of a discover entry must be a mapping with url: (and name:, credentials:, …)")
            return nil
        }
        guard let urlNode = mapping["url"], case .scalar(let scalar) = urlNode else {
            if mapping["codecommit"] != nil {
                report(node, "in a discover entry, write the CodeCommit address as url: \"codecommit::REGION://{name}\"")
            } else {
                report(node, "\(role == .primary ? "the primary" : "a secondary") of a discover entry needs a url: with {name} or {path}")
            }
            return nil
        }
        let template = scalar.string
        if let unknown = RemoteTemplate.unknownPlaceholders(in: template).first {
            report(urlNode, "unknown placeholder {\(unknown)} in url; use {name}, {path} or {owner}")
            return nil
        }
        if role == .secondary && !template.contains("{name}") && !template.contains("{path}") {
            report(urlNode, "the url of a discovered repository's secondary must contain {name} or {path}, or every repository would be pushed to one secondary")
            return nil
        }
        // The sample: the shape a listed repository has (an owner, a name).
        let owner: String
        switch source.kind {
        case .codeCommit: owner = ""
        case .forge: owner = source.owner
        }
        let sample = DiscoveredRepository(path: owner.isEmpty ? "example" : "\(owner)/example", name: "example", cloneURL: "")
        var substituted = scalar
        substituted.string = RemoteTemplate.substitute(template, repository: sample)
        let rebuilt = Node.mapping(Node.Mapping(mapping.map { key, value in
            (key, key.scalar?.string == "url" ? Node.scalar(substituted) : value)
        }, mapping.tag, mapping.style, mapping.mark))
        let before = problems.count
        guard let spec = remote(rebuilt, role: role, defaults: defaults, credentials: credentials, credentialNames: credentialNames) else { return nil }
        if problems.count > before { return nil }
        var allowInsecure = false
        if let value = mapping["allow_insecure"], case .scalar(let flag) = value { allowInsecure = ["true", "yes", "on"].contains(flag.string.lowercased()) }
        let endpoint = mapping["endpoint"]?.scalar?.string
        return RemoteTemplate(spec: spec, url: template, allowInsecure: allowInsecure, endpoint: endpoint, forgeKind: spec.forge?.kind,
                              forgeAPIWritten: mapping["api"] != nil, context: urlContext)
    }

}
