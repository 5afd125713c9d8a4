import Foundation

/// A remote's address in one of the forms git accepts, parsed once so that
/// validation, host-key checks and display agree on what it means.
public struct RemoteURL: Sendable, Equatable, CustomStringConvertible {
    public enum Scheme: String, Sendable {
        case https, http, ssh, git, file
    }

    public var scheme: Scheme
    public var user: String?
    public var host: String?
    public var port: Int?
    public var path: String
    /// The exact string handed to libgit2.
    public var gitURL: String
    /// Set when the address is an AWS CodeCommit repository.
    public var codeCommit: CodeCommitTarget?

    public init(scheme: Scheme, user: String?, host: String?, port: Int?, path: String, gitURL: String, codeCommit: CodeCommitTarget? = nil) {
        self.scheme = scheme
        self.user = user
        self.host = host
        self.port = port
        self.path = path
        self.gitURL = gitURL
        self.codeCommit = codeCommit ?? host.flatMap { CodeCommitTarget.recognize(host: $0, path: path.hasPrefix("/") ? path : "/" + path) }
    }

    public var description: String { gitURL }

    /// `ssh` and scp-like remotes: the name known_hosts uses (`host` or `[host]:port`).
    public var knownHostsName: String? {
        guard let host else { return nil }
        if let port, port != 22 { return "[\(host)]:\(port)" }
        return host
    }

    public var isLoopback: Bool {
        guard let host = host?.lowercased() else { return true }
        return host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
    }

    /// A key for "is this the same repository?": scheme-independent, no user, no trailing `.git` or `/`.
    public var identity: String {
        var trimmedPath = path
        while trimmedPath.hasSuffix("/") { trimmedPath.removeLast() }
        if trimmedPath.hasSuffix(".git") { trimmedPath.removeLast(4) }
        if scheme == .file { return "file:" + (trimmedPath as NSString).standardizingPath }
        return "\(host?.lowercased() ?? ""):\(trimmedPath.hasPrefix("/") ? trimmedPath : "/" + trimmedPath)"
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case empty
        case passwordInURL
        case tokenInQuery(String)
        case unsupportedScheme(String)
        case missingHost
        case badPort(String)
        case codeCommit(String)

        public var description: String {
            switch self {
            case .empty: return "the URL is empty"
            case .passwordInURL: return "the URL carries a password; remove it and name a credential with token_env or password_file instead"
            case .tokenInQuery(let key): return "the URL carries a secret in its query (\(key)=…); remove it and name a credential instead"
            case .unsupportedScheme(let scheme): return "unsupported URL scheme '\(scheme)' (use https, http, ssh, git, file, user@host:path or a local path)"
            case .missingHost: return "the URL has no host"
            case .badPort(let port): return "'\(port)' is not a valid port"
            case .codeCommit(let detail): return "not a CodeCommit address: \(detail)"
            }
        }
    }

    /// Parses `text`; a relative local path resolves against `base`.
    public static func parse(_ text: String, relativeTo base: URL, defaultRegion: String? = nil, codeCommitEndpoint: String? = nil) throws(ParseError) -> RemoteURL {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw .empty }
        if trimmed.hasPrefix("codecommit:") {
            return try parseCodeCommit(trimmed, defaultRegion: defaultRegion, endpoint: codeCommitEndpoint)
        }
        if let range = trimmed.range(of: "://") {
            let schemeText = trimmed[..<range.lowerBound].lowercased()
            guard let scheme = Scheme(rawValue: schemeText) else { throw .unsupportedScheme(schemeText) }
            let rest = String(trimmed[range.upperBound...])
            if scheme == .file {
                let path = rest.removingPercentEncoding ?? rest
                return RemoteURL(scheme: .file, user: nil, host: nil, port: nil, path: path, gitURL: path)
            }
            let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            var authority = String(rest[..<authorityEnd])
            var path = String(rest[authorityEnd...])
            if let query = path.firstIndex(of: "?") {
                let queryText = path[path.index(after: query)...]
                for pair in queryText.split(separator: "&") {
                    let key = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
                    if Redactor.secretQueryKeys.contains(key.lowercased()) { throw .tokenInQuery(key) }
                }
                path = String(path[..<query])
            }
            var user: String?
            if let at = authority.lastIndex(of: "@") {
                let userinfo = authority[..<at]
                if userinfo.contains(":") { throw .passwordInURL }
                user = String(userinfo).removingPercentEncoding ?? String(userinfo)
                authority = String(authority[authority.index(after: at)...])
            }
            var host = authority
            var port: Int?
            if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
                let after = host[host.index(after: close)...]
                if after.hasPrefix(":") {
                    let portText = String(after.dropFirst())
                    guard let value = Int(portText), (1...65535).contains(value) else { throw .badPort(portText) }
                    port = value
                }
                host = String(host[...close])
            } else if let colon = host.lastIndex(of: ":") {
                let portText = String(host[host.index(after: colon)...])
                guard let value = Int(portText), (1...65535).contains(value) else { throw .badPort(portText) }
                port = value
                host = String(host[..<colon])
            }
            guard !host.isEmpty else { throw .missingHost }
            return RemoteURL(scheme: scheme, user: user, host: host, port: port, path: path.isEmpty ? "/" : path, gitURL: trimmed)
        }
        // scp-like: [user@]host:path, where the colon comes before any slash.
        if let colon = trimmed.firstIndex(of: ":"), !trimmed[..<colon].contains("/"), trimmed[..<colon].count > 1 {
            var hostPart = String(trimmed[..<colon])
            let path = String(trimmed[trimmed.index(after: colon)...])
            var user: String?
            if let at = hostPart.lastIndex(of: "@") {
                user = String(hostPart[..<at])
                hostPart = String(hostPart[hostPart.index(after: at)...])
            }
            guard !hostPart.isEmpty else { throw .missingHost }
            return RemoteURL(scheme: .ssh, user: user, host: hostPart, port: nil, path: path, gitURL: trimmed)
        }
        // A local path.
        let absolute = trimmed.hasPrefix("/") ? trimmed : base.appendingPathComponent(trimmed).path
        let standardized = (absolute as NSString).standardizingPath
        return RemoteURL(scheme: .file, user: nil, host: nil, port: nil, path: standardized, gitURL: standardized)
    }
}
