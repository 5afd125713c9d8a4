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

    /// The form gitmirror prints and stores: no userinfo, except a plain SSH user such as `git@`
    /// (for HTTP a user name may be a token, and it is nobody's business in a log).
    public var display: String {
        guard let user, scheme != .ssh, scheme != .file, let range = gitURL.range(of: "://") else { return gitURL }
        let rest = gitURL[range.upperBound...]
        guard let at = rest.firstIndex(of: "@"), rest[..<at].removingPercentEncoding == user || rest[..<at] == user,
              !rest[..<at].contains("/") else { return gitURL }
        return String(gitURL[..<range.upperBound]) + rest[rest.index(after: at)...]
    }

    public var description: String { display }

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

    /// A key for "is this the same repository?": scheme-independent (a forge serves one repository over
    /// HTTPS and SSH), no user, host case folded, a port only when it is not its scheme's default, no
    /// trailing `.git` or `/`; a local path with its symlinks resolved.
    private static let defaultPorts: [Scheme: Int] = [.https: 443, .http: 80, .ssh: 22, .git: 9418]

    public var identity: String {
        var trimmedPath = path
        while trimmedPath.hasSuffix("/") && trimmedPath.count > 1 { trimmedPath.removeLast() }
        if trimmedPath.hasSuffix(".git") { trimmedPath.removeLast(4) }
        if scheme == .file {
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            var local = (resolved as NSString).standardizingPath
            while local.hasSuffix("/") && local.count > 1 { local.removeLast() }
            if local.hasSuffix(".git") { local.removeLast(4) }
            return "file:" + local
        }
        let portPart = port.flatMap { $0 == Self.defaultPorts[scheme] ? nil : ":\($0)" } ?? ""
        let host = (self.host ?? "").lowercased().filter { $0 != "[" && $0 != "]" }
        return "\(host)\(portPart):\(trimmedPath.hasPrefix("/") ? trimmedPath : "/" + trimmedPath)"
    }

    /// Whether a URL's user name is really a secret: a forge token's prefix, or a long run of
    /// base64/hex that mixes cases and digits as generated tokens do (people's names do not).
    static func looksLikeToken(_ user: String) -> Bool {
        let lower = user.lowercased()
        let prefixes = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gloas-", "gldt-", "glrt-", "glptt-",
                        "glsoat-", "glcbt-", "akia", "asia", "xoxb-", "xoxp-"]
        if prefixes.contains(where: { lower.hasPrefix($0) }) && user.count >= 12 { return true }
        guard user.count >= 20 else { return false }
        let base64 = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-")
        guard user.unicodeScalars.allSatisfy({ base64.contains($0) }) else { return false }
        let hex = CharacterSet(charactersIn: "0123456789abcdefABCDEF")
        if user.unicodeScalars.allSatisfy({ hex.contains($0) }) { return true }
        let hasDigit = user.contains { $0.isNumber }, hasUpper = user.contains { $0.isUppercase }, hasLower = user.contains { $0.isLowercase }
        return hasDigit && hasUpper && hasLower
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case empty
        case passwordInURL
        case tokenInQuery(String)
        case queryString
        case tokenAsUser
        case helperTransport(String)
        case unsupportedScheme(String)
        case missingHost
        case badPort(String)
        case codeCommit(String)

        public var description: String {
            switch self {
            case .empty: return "the URL is empty"
            case .passwordInURL: return "the URL carries a password; remove it and name a credential with token_env or password_file instead"
            case .tokenInQuery(let key): return "the URL carries a secret in its query (\(key)=…); remove it and name a credential instead"
            case .queryString: return "the URL has a query string (?…), which git remotes never have and which often carries a token; remove it, and move any token to credentials:"
            case .tokenAsUser: return "the URL's user name looks like a token; remove it from the URL and move it to credentials: (token_env or token_file)"
            case .helperTransport(let name): return "'\(name)::' URLs run a command or use a file descriptor and are refused; use https, ssh, git, file or a local path"
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
        // `<transport>::<address>` runs git-remote-<transport> (ext:: runs any command, fd:: reads a descriptor).
        if let helper = trimmed.range(of: "::") {
            let name = String(trimmed[..<helper.lowerBound])
            if name.range(of: "^[A-Za-z][A-Za-z0-9+.-]*$", options: .regularExpression) != nil { throw .helperTransport(name) }
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
            let path = String(rest[authorityEnd...])
            // Git remotes have no query string; one is refused whatever its keys (decoded first, so
            // that `access%5Ftoken` is named as what it is).
            if let query = path.firstIndex(where: { $0 == "?" || $0 == "#" }) {
                let queryText = path[path.index(after: query)...]
                for pair in queryText.split(separator: "&") {
                    let rawKey = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
                    let key = rawKey.removingPercentEncoding ?? rawKey
                    let normalized = key.lowercased().replacingOccurrences(of: "-", with: "_")
                    if Redactor.secretQueryKeys.contains(normalized) || normalized.contains("token") || normalized.contains("key")
                        || normalized.contains("secret") || normalized.contains("pass") {
                        throw .tokenInQuery(key)
                    }
                }
                throw .queryString
            }
            var user: String?
            if let at = authority.lastIndex(of: "@") {
                let userinfo = authority[..<at]
                if userinfo.contains(":") { throw .passwordInURL }
                user = String(userinfo).removingPercentEncoding ?? String(userinfo)
                if let user, looksLikeToken(user) { throw .tokenAsUser }
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
                if let user, looksLikeToken(user) { throw .tokenAsUser }
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
