import Foundation

/// The hosting services whose REST APIs gitmirror speaks: discovery, creation, default branches.
public enum ForgeKind: String, Sendable, CaseIterable, Codable {
    case github, gitlab, gitea

    /// The API root for a git host: the public service's own, or the path each product serves its API
    /// under on a self-hosted server (GitHub Enterprise `/api/v3`, GitLab `/api/v4`, Gitea and Forgejo `/api/v1`).
    public func apiRoot(host: String, port: Int?, scheme: String = "https") -> URL? {
        let lower = host.lowercased()
        if self == .github && (lower == "github.com" || lower == "www.github.com") { return URL(string: "https://api.github.com") }
        let authority = port.map { "\(host):\($0)" } ?? host
        let path = ["github": "/api/v3", "gitlab": "/api/v4", "gitea": "/api/v1"][rawValue]!
        return URL(string: "\(scheme)://\(authority)\(path)")
    }

    /// The kind a well-known public host runs.
    public static func known(host: String?) -> ForgeKind? {
        switch host?.lowercased() {
        case "github.com"?, "www.github.com"?: return .github
        case "gitlab.com"?: return .gitlab
        case "codeberg.org"?, "gitea.com"?: return .gitea
        default: return nil
        }
    }
}

/// Where a forge's REST API answers for a repository: its kind and its API root.
public struct ForgeEndpoint: Sendable, Equatable {
    public var kind: ForgeKind
    public var api: URL

    public init(kind: ForgeKind, api: URL) {
        self.kind = kind
        self.api = api
    }
}

/// A repository as a source's API describes it: what discovery stores, filters and expands.
public struct DiscoveredRepository: Codable, Sendable, Equatable {
    /// The full name on the forge (`acme/widget`, `platform/tools/cli`); CodeCommit: the repository name.
    public var path: String
    /// The last part of the path.
    public var name: String
    /// The HTTPS clone address the API gives (CodeCommit: a `codecommit::REGION://NAME` address).
    public var cloneURL: String
    public var sshURL: String?
    public var defaultBranch: String?
    public var description: String?
    /// `public`, `private` or `internal`.
    public var visibility: String
    public var archived: Bool
    public var fork: Bool

    public init(path: String, name: String, cloneURL: String, sshURL: String? = nil, defaultBranch: String? = nil,
                description: String? = nil, visibility: String = "private", archived: Bool = false, fork: Bool = false) {
        self.path = path
        self.name = name
        self.cloneURL = cloneURL
        self.sshURL = sshURL
        self.defaultBranch = defaultBranch
        self.description = description
        self.visibility = visibility
        self.archived = archived
        self.fork = fork
    }

    /// The namespace part of the path (`acme`, `platform/tools`).
    public var owner: String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    /// Why the path and name the API gave cannot fill a template, or nil. They are data, not a
    /// location: each part of the path is 1-255 of the characters every forge allows in a name
    /// (ASCII letters, digits, `.`, `_`, `-`), is neither `.` nor `..`, does not start with `-`,
    /// and the name is the path's last part. GitHub, GitLab, Gitea and CodeCommit all name their
    /// repositories within these rules, so a name outside them is a broken or hostile answer.
    public var nameProblem: String? {
        guard !path.isEmpty else { return "the API gave an empty path" }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 20 else { return "the API gave the path \(Printable.quoted(path)), which is more than 20 folders deep" }
        for part in parts {
            if let problem = Self.partProblem(part) {
                return "the API gave the path \(Printable.quoted(path)), whose part \(Printable.quoted(String(part), limit: 40)) \(problem); it was not used"
            }
        }
        guard name == parts.last.map(String.init) else {
            return "the API gave the name \(Printable.quoted(name)), which is not the last part of its path \(Printable.quoted(path)); it was not used"
        }
        return nil
    }

    static func partProblem(_ part: Substring) -> String? {
        if part.isEmpty { return "is empty" }
        if part == "." || part == ".." { return "would step out of its folder" }
        if part.utf8.count > 255 { return "is longer than 255 characters" }
        if part.hasPrefix("-") { return "starts with '-'" }
        let allowed = part.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
        return allowed ? nil : "holds a character no forge allows in a name (only letters, digits, '.', '_' and '-')"
    }
}

/// Why an address (written, or a template expanded) cannot be used.
public struct AddressProblem: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What a relative or templated address needs to be parsed as mirrors.yaml parses a written one.
public struct URLContext: Sendable {
    public var base: URL
    public var defaultRegion: String?
    public var codeCommitEndpoint: String?
}

/// A secondary (or a discovered primary) whose address has `{name}`, `{path}` or `{owner}` in it.
public struct RemoteTemplate: Sendable {
    /// Every setting but the address (whose value here is the template's sample expansion).
    public var spec: RemoteSpec
    public var url: String
    public var allowInsecure: Bool
    /// The `endpoint:` of a CodeCommit address.
    public var endpoint: String?
    /// A `forge:` written without `api:`: the API root follows the expanded address's host.
    public var forgeKind: ForgeKind?
    public var forgeAPIWritten: Bool
    public var context: URLContext

    public static let placeholders = ["name", "path", "owner"]

    /// `{name}`, `{path}` and `{owner}` replaced; an unknown placeholder is left as it is.
    public static func substitute(_ template: String, repository: DiscoveredRepository) -> String {
        template.replacingOccurrences(of: "{name}", with: repository.name)
            .replacingOccurrences(of: "{path}", with: repository.path)
            .replacingOccurrences(of: "{owner}", with: repository.owner)
    }

    /// The placeholders in `template` that are not known.
    public static func unknownPlaceholders(in template: String) -> [String] {
        guard let regex = try? NSRegularExpression(pattern: #"\{([^{}]*)\}"#) else { return [] }
        return regex.matches(in: template, range: NSRange(template.startIndex..., in: template)).compactMap { match in
            Range(match.range(at: 1), in: template).map { String(template[$0]) }
        }.filter { !placeholders.contains($0) }
    }

    /// The remote for one discovered repository, or why its address is not valid.
    public func expand(for repository: DiscoveredRepository) -> Result<RemoteSpec, AddressProblem> {
        let role = spec.role == .primary ? "the primary" : "secondary '\(spec.name)'"
        if let problem = repository.nameProblem { return .failure(AddressProblem("\(role): \(problem)")) }
        let text = Self.substitute(url, repository: repository)
        // What the API filled in stays below the template's fixed prefix: no `.` or `..` segment
        // after it (also percent-encoded), whatever the names' own check let through.
        let prefix = url[..<(url.firstIndex(of: "{") ?? url.endIndex)]
        let filled = text.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        if !text.hasPrefix(prefix) || filled.contains(where: { [".", ".."].contains(($0.removingPercentEncoding ?? String($0))) }) {
            return .failure(AddressProblem("\(role) \(Printable.quoted(text)) would leave \(prefix), where its template puts it; it was not used"))
        }
        switch RemoteURL.parseChecked(text, context: context, allowInsecure: allowInsecure, endpoint: endpoint) {
        case .failure(let problem):
            return .failure(AddressProblem("\(role) \(Printable.escaped(text)): \(problem)"))
        case .success(let parsed):
            var remote = spec
            remote.url = parsed
            if let forgeKind, !forgeAPIWritten {
                remote.forge = parsed.host.flatMap { forgeKind.apiRoot(host: $0, port: parsed.port) }.map { ForgeEndpoint(kind: forgeKind, api: $0) }
            }
            if remote.description == nil { remote.description = repository.description }
            return .success(remote)
        }
    }
}

/// One `discover:` entry: a place to list repositories from, which of them to take, and where each goes.
public struct DiscoverySource: Sendable {
    public enum Kind: Sendable, Equatable {
        case forge(ForgeEndpoint)
        case codeCommit(region: String)
    }

    public enum CloneProtocol: String, Sendable { case https, ssh }

    /// The most a forge API's answer (one page of a listing) may hold, unless `max_answer_size:` says otherwise.
    public static let defaultMaxAnswerSize = 16 << 20

    /// `github:acme`, `gitlab:platform/tools`, `codecommit:eu-west-1`: names the source in reports and in SQLite.
    public var id: String
    public var kind: Kind
    /// The organisation, user or group (a CodeCommit source: its region).
    public var owner: String
    /// The token for the API (and for cloning the primaries, unless `primary:` says otherwise).
    public var credentialName: String?
    public var include: [String] = []
    public var exclude: [String] = []
    public var archived = true
    public var forks = true
    /// nil: every visibility.
    public var visibility: Set<String>?
    public var subgroups = true
    /// The mirror's name; slashes of `{path}` and `{owner}` become dashes.
    public var nameTemplate = "{name}"
    public var clone: CloneProtocol = .https
    /// Hosts besides the API's own that the API's clone addresses may name (`clone_host:`), lowercased.
    public var cloneHosts: [String] = []
    /// The most one API answer may hold (`max_answer_size:`), in bytes.
    public var maxAnswerSize = DiscoverySource.defaultMaxAnswerSize
    /// Where the primary is cloned from instead of the address the API gives.
    public var primary: RemoteTemplate?
    public var primaryPolicy = Policy()
    public var secondaries: [RemoteTemplate] = []
    public var interval: TimeInterval?
    public var location: SourceLocation

    /// The mirror name for a repository (not yet checked).
    public func mirrorName(for repository: DiscoveredRepository) -> String {
        nameTemplate.replacingOccurrences(of: "{name}", with: repository.name)
            .replacingOccurrences(of: "{path}", with: repository.path.replacingOccurrences(of: "/", with: "-"))
            .replacingOccurrences(of: "{owner}", with: repository.owner.replacingOccurrences(of: "/", with: "-"))
    }

    /// Why a listed repository is left out, or nil when it is taken.
    public func exclusion(of repository: DiscoveredRepository) -> String? {
        if !archived && repository.archived { return "archived (archived: false)" }
        if !forks && repository.fork { return "a fork (forks: false)" }
        if let visibility, !visibility.contains(repository.visibility) {
            return "\(repository.visibility) (visibility: \(visibility.sorted().joined(separator: ", ")))"
        }
        if !include.isEmpty && !include.contains(where: { Self.glob($0, matches: repository.path) }) {
            return "matches no include pattern"
        }
        if let pattern = exclude.first(where: { Self.glob($0, matches: repository.path) }) { return "matches exclude '\(pattern)'" }
        return nil
    }

    /// Shell-style patterns on the full name, case-insensitive (forges' names are); `*` also crosses `/`.
    public static func glob(_ pattern: String, matches name: String) -> Bool {
        fnmatch(pattern.lowercased(), name.lowercased(), 0) == 0
    }

    /// The documented clone host of a public forge whose API is on another host (github.com's API
    /// is api.github.com); a self-hosted forge serves clones from its API's host, or says so in `clone_host:`.
    static let documentedCloneHosts: [String: [String]] = ["api.github.com": ["github.com"]]

    /// The hosts the API's clone addresses may name: the API's own, the documented one, and `clone_host:`.
    public var trustedCloneHosts: [String] {
        guard case .forge(let endpoint) = kind, let host = endpoint.api.host?.lowercased() else { return cloneHosts }
        return [host] + (Self.documentedCloneHosts[host] ?? []) + cloneHosts
    }

    /// Why a clone address the API gave cannot be the primary, or nil. The API names a repository on
    /// its own forge: the same scheme (https, or http only from an http API; ssh with `clone: ssh`) on
    /// a host the configuration trusts. Never a local path, `file://`, git:// or another host: the
    /// source's token would go there, and a repository on this machine would be published.
    func cloneAddressProblem(_ url: RemoteURL, as address: String, for repository: DiscoveredRepository) -> String? {
        let quoted = Printable.quoted(address)
        switch kind {
        case .codeCommit(let region):
            guard let target = url.codeCommit, url.scheme == .https, target.region == region, target.repository == repository.path else {
                return "the API gave the clone address \(quoted), which is not CodeCommit's \(repository.path) in \(region); it was not used"
            }
            return nil
        case .forge(let endpoint):
            if url.scheme == .file {
                return "the API gave the clone address \(quoted), a path on this machine; an API may name repositories on its forge only, so it was not used"
            }
            let schemes: [RemoteURL.Scheme] = clone == .ssh ? [.ssh] : (endpoint.api.scheme == "http" ? [.https, .http] : [.https])
            guard schemes.contains(url.scheme) else {
                return "the API gave the clone address \(quoted), whose scheme \(url.scheme.rawValue) is not \(schemes.map(\.rawValue).joined(separator: " or ")) (clone: \(clone.rawValue)); it was not used"
            }
            let host = (url.host ?? "").lowercased()
            guard trustedCloneHosts.contains(host) else {
                return "the API gave the clone address \(quoted), on \(Printable.quoted(host)), which is not its forge (\(trustedCloneHosts.joined(separator: ", "))); it was not used, and no credential went there. If the forge really serves clones from that host, name it in clone_host: on the discover entry"
            }
            return nil
        }
    }

    /// The mirror for one listed repository, or why it cannot be one.
    public func mirror(for repository: DiscoveredRepository) -> Result<Mirror, AddressProblem> {
        if let problem = repository.nameProblem { return .failure(AddressProblem(problem)) }
        let name = mirrorName(for: repository)
        guard isSafeIdentifier(name) else {
            return .failure(AddressProblem("its mirror name \(Printable.quoted(name)) is not a safe name (1-100 letters, digits, '.', '_' or '-'); set name: on the discover entry"))
        }
        let primary: RemoteSpec
        if let template = self.primary {
            switch template.expand(for: repository) {
            case .success(let spec): primary = spec
            case .failure(let problem): return .failure(problem)
            }
        } else {
            let address = clone == .ssh ? (repository.sshURL ?? repository.cloneURL) : repository.cloneURL
            let context = secondaries.first?.context ?? URLContext(base: URL(fileURLWithPath: "/"), defaultRegion: nil, codeCommitEndpoint: nil)
            switch RemoteURL.parseChecked(address, context: context, allowInsecure: true, endpoint: nil) {
            case .failure(let problem): return .failure(AddressProblem("the API gave the clone address \(Printable.quoted(address)), which is not usable: \(problem)"))
            case .success(let url):
                if let problem = cloneAddressProblem(url, as: address, for: repository) { return .failure(AddressProblem(problem)) }
                // The source's token clones over HTTPS too (an SSH clone needs a key: write primary: for it).
                let token = url.scheme == .https || url.scheme == .http ? credentialName : nil
                var spec = RemoteSpec(name: "primary", role: .primary, url: url, credentialName: token, policy: primaryPolicy)
                if case .forge(let endpoint) = kind { spec.forge = endpoint }
                primary = spec
            }
        }
        var secondaries: [RemoteSpec] = []
        for template in self.secondaries {
            switch template.expand(for: repository) {
            case .success(let spec):
                if spec.url.identity == primary.url.identity { return .failure(AddressProblem("secondary '\(spec.name)' \(spec.url) is the primary itself")) }
                secondaries.append(spec)
            case .failure(let problem): return .failure(problem)
            }
        }
        return .success(Mirror(name: name, primary: primary, secondaries: secondaries, interval: interval,
                               origin: MirrorOrigin(source: id, path: repository.path)))
    }
}
