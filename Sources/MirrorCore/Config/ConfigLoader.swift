import Foundation
// On Linux `struct stat` reaches Swift through Dispatch's C module, which MemberImportVisibility wants named.
#if canImport(CDispatch)
import CDispatch
#endif
import Yams

/// A place in mirrors.yaml.
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public var description: String { "\(file):\(line):\(column)" }
}

/// One thing wrong with the configuration, and where.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public var description: String { "\(location): error: \(message)" }
}

/// Every problem found in a configuration file; nothing runs while there is one.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]

    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Reads mirrors.yaml into a `Config`, reporting every problem at once with its line and column.
public struct ConfigLoader {
    /// Also report every `*_env` the file names whose variable is unset or empty (`validate`, the daemon):
    /// what a process would otherwise only find when it first needs the secret.
    public var requireEnvironment = false
    /// The region of a `codecommit://NAME` that names none. Parsing reads mirrors.yaml and nothing else,
    /// so the caller supplies it (`ConfigLoader.forThisMachine` reads the AWS SDKs' default); without it,
    /// AWS_REGION or AWS_DEFAULT_REGION from `environment`.
    public var defaultRegion: String?

    public init(requireEnvironment: Bool = false, defaultRegion: String? = nil) {
        self.requireEnvironment = requireEnvironment
        self.defaultRegion = defaultRegion
    }

    public func load(file: URL, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> Config {
        func problem(_ message: String, line: Int = 1, column: Int = 1) -> ConfigError {
            ConfigError(problems: [ConfigProblem(location: SourceLocation(file: file.path, line: line, column: column), message: message)])
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw problem("this is a directory, not a configuration file; pass --config FILE (for example \(file.appendingPathComponent("mirrors.yaml").path))")
        }
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            throw problem("cannot read the configuration file (\(Self.reason(error))); pass --config FILE or set GITMIRROR_CONFIG")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            let (line, column) = Self.firstInvalidUTF8(in: data)
            throw problem("the file is not UTF-8 text (an invalid byte here); save it as UTF-8", line: line, column: column)
        }
        return try parse(text, file: file, environment: environment)
    }

    /// Line and column (in characters) of the first byte that is not valid UTF-8.
    static func firstInvalidUTF8(in data: Data) -> (line: Int, column: Int) {
        let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() where String(data: Data(line), encoding: .utf8) == nil {
            var valid = 0
            for length in stride(from: line.count, through: 0, by: -1) {
                if let prefix = String(data: Data(line.prefix(length)), encoding: .utf8) {
                    valid = prefix.count
                    break
                }
            }
            return (index + 1, valid + 1)
        }
        return (1, 1)
    }

    public func parse(_ text: String, file: URL, environment: [String: String] = [:]) throws(ConfigError) -> Config {
        var walker = Walker(file: file, environment: environment)
        walker.requireEnvironment = requireEnvironment
        walker.defaultRegion = defaultRegion ?? [environment["AWS_REGION"], environment["AWS_DEFAULT_REGION"]].compactMap { $0 }.first { !$0.isEmpty }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError(problems: [walker.yamlProblem(error)])
        } catch {
            throw ConfigError(problems: [ConfigProblem(location: SourceLocation(file: file.path, line: 1, column: 1), message: "\(error)")])
        }
        guard let root else {
            throw ConfigError(problems: [ConfigProblem(location: SourceLocation(file: file.path, line: 1, column: 1), message: "the file is empty; it needs at least 'repositories:'")])
        }
        let config = walker.config(root)
        if !walker.problems.isEmpty || config == nil {
            throw ConfigError(problems: walker.problems.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) })
        }
        return config!
    }

    static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if nsError.domain == NSCocoaErrorDomain && nsError.code == NSFileReadNoSuchFileError { return "no such file" }
        if nsError.domain == NSCocoaErrorDomain && nsError.code == NSFileReadNoPermissionError {
            let user = getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "uid \(geteuid())"
            return "permission denied for user \(user)"
        }
        return nsError.localizedDescription
    }
}

/// Names users choose for repositories, remotes and credentials: safe in
/// paths, refs, metrics labels and SQL alike.
func isSafeIdentifier(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first, name.count <= 100 else { return false }
    guard CharacterSet.alphanumerics.contains(first), first.isASCII else { return false }
    return name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
        && !name.hasSuffix(".lock") && !name.contains("..")
}

private struct Walker {
    let file: URL
    let environment: [String: String]
    var requireEnvironment = false
    var defaultRegion: String?
    var base: URL { file.deletingLastPathComponent() }
    var problems: [ConfigProblem] = []
    /// Where each repository's remotes are written (`repository/remote`), for problems that span repositories.
    var remoteNodes: [String: Node] = [:]

    init(file: URL, environment: [String: String]) {
        self.file = file
        self.environment = environment
    }

    func location(_ node: Node) -> SourceLocation {
        SourceLocation(file: file.path, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    mutating func report(_ node: Node, _ message: String) {
        problems.append(ConfigProblem(location: location(node), message: message))
    }

    func yamlProblem(_ error: YamlError) -> ConfigProblem {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let detail = [context.map { "\($0.text)" }, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
            return ConfigProblem(location: SourceLocation(file: file.path, line: mark.line, column: mark.column), message: "invalid YAML: \(detail)")
        case let .duplicatedKeysInMapping(duplicates, context):
            let line = context.mark.line, column = context.mark.column
            return ConfigProblem(location: SourceLocation(file: file.path, line: line, column: column),
                                 message: "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in this mapping")
        default:
            return ConfigProblem(location: SourceLocation(file: file.path, line: 1, column: 1), message: "invalid YAML: \(error)")
        }
    }

    // MARK: typed accessors

    /// The mapping's pairs, after reporting unknown and duplicate keys.
    mutating func mapping(_ node: Node, allowed: [String], what: String) -> [(key: String, keyNode: Node, value: Node)]? {
        guard case .mapping(let mapping) = node else {
            report(node, "\(what) must be a mapping (key: value)")
            return nil
        }
        var seen: Set<String> = []
        var result: [(String, Node, Node)] = []
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                report(keyNode, "keys in \(what) must be plain strings")
                continue
            }
            if !seen.insert(key).inserted {
                report(keyNode, "duplicate key '\(key)' in \(what)")
                continue
            }
            if !allowed.contains(key) {
                let suggestion = allowed.min { editDistance($0, key) < editDistance($1, key) }
                let hint = suggestion.flatMap { editDistance($0, key) <= 3 ? " (did you mean '\($0)'?)" : nil } ?? ""
                report(keyNode, "unknown key '\(key)' in \(what)\(hint); allowed: \(allowed.joined(separator: ", "))")
                continue
            }
            result.append((key, keyNode, value))
        }
        return result
    }

    mutating func string(_ node: Node, _ what: String) -> String? {
        guard case .scalar(let scalar) = node else {
            report(node, "\(what) must be a string")
            return nil
        }
        // A plain empty, ~ or null scalar is YAML's null, not a string.
        if scalar.style == .plain, scalar.string == "~" || scalar.string == "null" || scalar.string.isEmpty {
            report(node, "\(what) must not be empty")
            return nil
        }
        return scalar.string
    }

    mutating func bool(_ node: Node, _ what: String) -> Bool? {
        if case .scalar(let scalar) = node, scalar.style == .plain {
            switch scalar.string.lowercased() {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: break
            }
        }
        report(node, "\(what) must be true or false")
        return nil
    }

    mutating func integer(_ node: Node, _ what: String, minimum: Int) -> Int? {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Int(scalar.string) else {
            report(node, "\(what) must be a whole number")
            return nil
        }
        guard value >= minimum else {
            report(node, "\(what) must be at least \(minimum)")
            return nil
        }
        return value
    }

    mutating func duration(_ node: Node, _ what: String, minimum: TimeInterval = 1) -> TimeInterval? {
        if case .scalar(let scalar) = node, let number = Double(scalar.string.trimmingCharacters(in: .whitespaces)) {
            let shown = number == number.rounded() ? String(Int(number)) : scalar.string
            report(node, "\(what): \(scalar.string) has no unit; write \(shown)s, \(shown)m or \(shown)h")
            return nil
        }
        guard case .scalar(let scalar) = node, let value = parseDuration(scalar.string) else {
            report(node, "\(what) must be a duration such as 90s, 2m or 1h")
            return nil
        }
        guard value >= minimum else {
            report(node, "\(what) must be at least \(minimum == 0 ? "0s" : formatDuration(minimum))")
            return nil
        }
        return value
    }

    mutating func path(_ node: Node, _ what: String) -> URL? {
        guard let text = string(node, what) else { return nil }
        let expanded = (text as NSString).expandingTildeInPath
        return expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : base.appendingPathComponent(expanded).standardizedFileURL
    }

    /// A file that must exist and, holding a secret, must not be readable by everyone. The mode is the
    /// one of the file a symlink leads to: Kubernetes mounts a Secret's keys as links (`token ->
    /// ..data/token`) whose own mode is always 0777; the file behind is 0400 or 0440 (`defaultMode`).
    mutating func secretFile(_ node: Node, _ what: String) -> URL? {
        guard let url = path(node, what) else { return nil }
        var info = stat()
        guard stat(url.path, &info) == 0 else {
            let exists = FileManager.default.fileExists(atPath: url.path) || (try? FileManager.default.destinationOfSymbolicLink(atPath: url.path)) != nil
            report(node, exists ? "\(what) '\(url.path)' cannot be read (\(String(cString: strerror(errno))))" : "\(what) '\(url.path)' does not exist")
            return nil
        }
        let mode = Int(info.st_mode & 0o7777)
        if mode & 0o004 != 0 {
            let linked = (try? FileManager.default.destinationOfSymbolicLink(atPath: url.path)) != nil
            let fix = linked ? "make the file it links to unreadable by others (for a Kubernetes Secret volume: defaultMode: 0400 or 0440)" : "run chmod 600 on it"
            report(node, "\(what) '\(url.path)' is readable by every user (mode \(String(mode, radix: 8))); \(fix)")
            return nil
        }
        return url
    }

    mutating func existingFile(_ node: Node, _ what: String) -> URL? {
        guard let url = path(node, what) else { return nil }
        if !FileManager.default.fileExists(atPath: url.path) {
            report(node, "\(what) '\(url.path)' does not exist")
            return nil
        }
        return url
    }

    mutating func name(_ node: Node, _ what: String) -> String? {
        guard let text = string(node, what) else { return nil }
        guard isSafeIdentifier(text) else {
            report(node, "\(what) '\(text)' is not a safe name: use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
            return nil
        }
        return text
    }

    mutating func refPatterns(_ node: Node) -> [String]? {
        guard case .sequence(let sequence) = node else {
            report(node, "refs must be a list of ref patterns such as [\"refs/heads/*\", \"refs/tags/v*\"]")
            return nil
        }
        var patterns: [String] = []
        for item in sequence {
            guard let pattern = string(item, "a ref pattern") else { continue }
            if !pattern.hasPrefix("refs/") {
                let namespaces = ["heads/", "tags/", "notes/", "remotes/", "changes/", "pull/", "merge-requests/"]
                let suggestion = namespaces.contains { pattern.hasPrefix($0) } ? "refs/\(pattern)" : "refs/heads/\(pattern)"
                report(item, "ref pattern '\(pattern)' must start with refs/ (did you mean \(suggestion)?)")
            } else if let namespace = privateRefNamespaces.first(where: { pattern.hasPrefix($0) }) {
                report(item, "ref pattern '\(pattern)' is in \(namespace)*, which belongs to the hosting service or to gitmirror and is never mirrored")
            } else if pattern.filter({ $0 == "*" }).count > 1 || pattern.contains("..") || pattern.contains(" ") || pattern.hasSuffix("/") {
                report(item, "ref pattern '\(pattern)' is not valid: use a ref name with at most one '*'")
            } else {
                patterns.append(pattern)
            }
        }
        if patterns.isEmpty && problems.isEmpty { report(node, "refs must list at least one pattern") }
        return patterns
    }

    mutating func url(_ node: Node, allowInsecure: Bool, endpoint: String? = nil) -> RemoteURL? {
        guard let text = string(node, "url") else { return nil }
        do {
            let endpoint = endpoint ?? environment["CODE_COMMIT_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }
            var url = try RemoteURL.parse(text, relativeTo: base, defaultRegion: defaultRegion, codeCommitEndpoint: endpoint)
            if let target = url.codeCommit {
                if !CodeCommitTarget.isValidName(target.repository) {
                    report(node, "'\(target.repository)' is not a valid CodeCommit repository name: 1-100 letters, digits, '.', '_' or '-', not ending in .git")
                    return nil
                }
                if let endpoint, url.scheme == .https { url = RemoteURL.codeCommit(target, endpoint: endpoint) }
            }
            if url.scheme == .http && !url.isLoopback && !allowInsecure {
                report(node, "http:// sends credentials and code in clear text; use https://, or set allow_insecure: true on this remote")
                return nil
            }
            return url
        } catch {
            report(node, error.description)
            return nil
        }
    }

    // MARK: the document

    mutating func config(_ root: Node) -> Config? {
        guard let pairs = mapping(root, allowed: ["state_dir", "defaults", "credentials", "repositories", "max_parallel_pushes", "daemon", "retention"], what: "the top level") else { return nil }
        var daemonSettings = DaemonSettings()
        var retention = Retention()
        // Without state_dir: $GITMIRROR_STATE_DIR (the container image sets /var/lib/gitmirror: its
        // configuration is mounted read-only), else .gitmirror beside the configuration file.
        var stateDirectory = environment["GITMIRROR_STATE_DIR"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) }
            ?? base.appendingPathComponent(".gitmirror")
        var defaults = Policy()
        var credentials: [String: CredentialSpec] = [:]
        var credentialNodes: [(Node, Node)] = []
        var repositoriesNode: Node?
        var maxParallel = 4
        for (key, _, value) in pairs {
            switch key {
            case "state_dir": if let url = path(value, "state_dir") { stateDirectory = url }
            case "defaults": defaults = policy(value, inheriting: Policy(), what: "defaults")
            case "max_parallel_pushes": if let number = integer(value, "max_parallel_pushes", minimum: 1) { maxParallel = number }
            case "credentials":
                guard case .mapping(let mapping) = value else {
                    report(value, "credentials must be a mapping of credential names to their settings")
                    continue
                }
                for (nameNode, body) in mapping { credentialNodes.append((nameNode, body)) }
            case "repositories": repositoriesNode = value
            case "daemon": daemonSettings = daemon(value)
            case "retention": retention = self.retention(value)
            default: break
            }
        }
        for (nameNode, body) in credentialNodes {
            guard let name = name(nameNode, "credential name") else { continue }
            if credentials[name] != nil { report(nameNode, "duplicate credential '\(name)'"); continue }
            if let spec = credential(name: name, body) { credentials[name] = spec }
        }
        guard let repositoriesNode else {
            report(root, "missing 'repositories:': list at least one repository with a primary and secondaries")
            return nil
        }
        guard case .sequence(let sequence) = repositoriesNode else {
            report(repositoriesNode, "repositories must be a list (each item starts with '- name:')")
            return nil
        }
        var mirrors: [Mirror] = []
        var names: [String: (name: String, node: Node)] = [:]
        for item in sequence {
            guard let mirror = mirror(item, defaults: defaults, credentials: credentials, credentialNames: Set(credentialNodes.compactMap { $0.0.scalar?.string })) else { continue }
            // Each repository has a cache folder named after it: names that differ only in case
            // would share one on a case-insensitive volume.
            if let previous = names[mirror.name.lowercased()] {
                let how = previous.name == mirror.name ? "duplicate repository name '\(mirror.name)'"
                    : "repository name '\(mirror.name)' differs from '\(previous.name)' only in case, and they would share one cache on a case-insensitive volume"
                report(item, "\(how) (first defined at line \(previous.node.mark?.line ?? 0))")
                continue
            }
            names[mirror.name.lowercased()] = (mirror.name, item)
            mirrors.append(mirror)
        }
        if sequence.isEmpty { report(repositoriesNode, "repositories is empty: list at least one repository") }
        checkSharedSecondaries(mirrors)
        checkCycles(mirrors)
        return Config(file: file, stateDirectory: stateDirectory, maxParallelPushes: maxParallel, credentials: credentials,
                      repositories: mirrors, daemon: daemonSettings, retention: retention)
    }

    /// Two repositories pushing to one secondary overwrite each other's refs on every sync.
    mutating func checkSharedSecondaries(_ mirrors: [Mirror]) {
        var owners: [String: (mirror: String, remote: String)] = [:]
        for mirror in mirrors {
            for secondary in mirror.secondaries {
                let identity = secondary.url.identity
                guard let owner = owners[identity] else {
                    owners[identity] = (mirror.name, secondary.name)
                    continue
                }
                guard owner.mirror != mirror.name, let node = remoteNodes["\(mirror.name)/\(secondary.name)"] else { continue }
                let first = remoteNodes["\(owner.mirror)/\(owner.remote)"].map { location($0).description } ?? "?"
                report(node, "secondary '\(secondary.name)' of '\(mirror.name)' is the same repository as secondary '\(owner.remote)' of '\(owner.mirror)' (\(first)): two primaries would overwrite each other's refs on it at every sync; give each repository its own secondary")
            }
        }
    }

    /// A secondary that is, through other repositories, mirrored back onto its own primary.
    mutating func checkCycles(_ mirrors: [Mirror]) {
        var edges: [String: [(to: String, mirror: String, remote: String)]] = [:]
        for mirror in mirrors {
            for secondary in mirror.secondaries {
                edges[mirror.primary.url.identity, default: []].append((secondary.url.identity, mirror.name, secondary.name))
            }
        }
        var reported: Set<String> = []
        for mirror in mirrors {
            let start = mirror.primary.url.identity
            // Depth-first from each secondary: reaching `start` again closes a cycle.
            for secondary in mirror.secondaries {
                var path = ["'\(mirror.name)' → \(secondary.name)"]
                var seen: Set<String> = [start]
                guard let cycle = Self.walk(from: secondary.url.identity, to: start, edges: edges, seen: &seen, path: &path) else { continue }
                let key = cycle.sorted().joined(separator: "|")
                guard reported.insert(key).inserted, let node = remoteNodes["\(mirror.name)/\(secondary.name)"] else { continue }
                report(node, "the repositories mirror in a cycle (\(cycle.joined(separator: ", then "))), back onto the primary of '\(mirror.name)': each sync would push the others' refs round and round; remove one of these secondaries")
            }
        }
    }

    static func walk(from node: String, to target: String, edges: [String: [(to: String, mirror: String, remote: String)]],
                     seen: inout Set<String>, path: inout [String]) -> [String]? {
        if node == target { return path }
        guard seen.insert(node).inserted else { return nil }
        for edge in edges[node] ?? [] {
            path.append("'\(edge.mirror)' → \(edge.remote)")
            if let found = walk(from: edge.to, to: target, edges: edges, seen: &seen, path: &path) { return found }
            path.removeLast()
        }
        return nil
    }

    mutating func retention(_ node: Node) -> Retention {
        var retention = Retention()
        guard let pairs = mapping(node, allowed: ["runs", "journal"], what: "retention") else { return retention }
        for (key, _, value) in pairs {
            switch key {
            case "runs": if let seconds = minimumDuration(value, "retention.runs", at: 3600) { retention.runs = seconds }
            case "journal":
                if value.scalar?.string == "forever" { retention.journal = nil; continue }
                guard case .scalar(let scalar) = value, parseDuration(scalar.string) != nil || Double(scalar.string) != nil else {
                    report(value, "retention.journal must be a duration such as 365d, or forever")
                    continue
                }
                if let seconds = minimumDuration(value, "retention.journal", at: 86400) { retention.journal = seconds }
            default: break
            }
        }
        if let journal = retention.journal, journal < retention.runs {
            report(node, "retention.journal (\(formatDuration(journal))) is shorter than retention.runs (\(formatDuration(retention.runs))): runs that moved refs would go before those that did not")
        }
        return retention
    }

    mutating func minimumDuration(_ node: Node, _ what: String, at minimum: TimeInterval) -> TimeInterval? {
        guard let seconds = duration(node, what) else { return nil }
        guard seconds >= minimum else {
            report(node, "\(what) must be at least \(formatDuration(minimum))")
            return nil
        }
        return seconds
    }

    mutating func secretReference(_ pairs: [(key: String, keyNode: Node, value: Node)], prefix: String) -> SecretSource? {
        var source: SecretSource?
        for (key, _, value) in pairs {
            if key == "\(prefix)_env", let name = environmentName(value, key) { source = .environment(name) }
            if key == "\(prefix)_file", let url = secretFile(value, key) { source = .file(url) }
        }
        return source
    }

    mutating func daemon(_ node: Node) -> DaemonSettings {
        var settings = DaemonSettings()
        let keys = ["listen", "interval", "max_parallel_repositories", "max_connections_per_host", "shutdown_grace",
                    "retry_base", "retry_cap", "start_spread", "hooks", "notify", "peers"]
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
            case "shutdown_grace": if let seconds = duration(value, key) { settings.shutdownGrace = seconds }
            case "retry_base": if let seconds = duration(value, key) { settings.retryBase = seconds }
            case "retry_cap": if let seconds = duration(value, key) { settings.retryCap = seconds }
            case "start_spread": if let seconds = duration(value, key, minimum: 0) { settings.startSpread = seconds }
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

    mutating func policy(_ node: Node, inheriting parent: Policy, what: String, extraKeys: [String] = []) -> Policy {
        var policy = parent
        let keys = ["refs", "force", "prune", "max_deletes", "timeout", "stall_timeout"]
        guard let pairs = mapping(node, allowed: keys + extraKeys, what: what) else { return policy }
        applyPolicy(pairs, to: &policy)
        return policy
    }

    mutating func applyPolicy(_ pairs: [(key: String, keyNode: Node, value: Node)], to policy: inout Policy) {
        for (key, _, value) in pairs {
            switch key {
            case "refs": if let refs = refPatterns(value), !refs.isEmpty { policy.refs = refs }
            case "force": if let flag = bool(value, "force") { policy.force = flag }
            case "prune": if let flag = bool(value, "prune") { policy.prune = flag }
            case "max_deletes": if let number = integer(value, "max_deletes", minimum: 0) { policy.maxDeletes = number }
            case "timeout": if let seconds = duration(value, "timeout") { policy.timeout = seconds }
            case "stall_timeout": if let seconds = duration(value, "stall_timeout") { policy.stallTimeout = seconds }
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
        guard let name, let primary, secondaries.count == items.count else { return nil }
        return Mirror(name: name, primary: primary, secondaries: secondaries, interval: interval)
    }

    mutating func remote(_ node: Node, role: Role, defaults: Policy, credentials: [String: CredentialSpec], credentialNames: Set<String>) -> RemoteSpec? {
        if role == .primary, case .scalar = node {
            guard let url = url(node, allowInsecure: false) else { return nil }
            return RemoteSpec(name: "primary", role: .primary, url: url, credentialName: nil, policy: defaults)
        }
        let policyKeys = role == .secondary ? ["refs", "force", "prune", "max_deletes", "timeout", "stall_timeout"] : ["timeout", "stall_timeout"]
        let keys = (role == .secondary ? ["name", "create"] : []) + ["url", "codecommit", "endpoint", "credentials", "allow_insecure"] + policyKeys
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
        if create && url.codeCommit == nil, let createNode {
            report(createNode, "create: true works for CodeCommit repositories only; create the repository on this server by hand")
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
        return RemoteSpec(name: name, role: role, url: url, credentialName: credentialName, policy: policy, create: create)
    }

    /// `codecommit: {region: eu-west-1, repository: payments}`
    mutating func codeCommit(_ node: Node, endpoint: String?) -> RemoteURL? {
        guard let pairs = mapping(node, allowed: ["region", "repository", "fips"], what: "codecommit") else { return nil }
        var region = defaultRegion
        var repository: String?
        var fips = false
        for (key, _, value) in pairs {
            switch key {
            case "region": region = string(value, "region")
            case "repository":
                repository = string(value, "repository")
                if let name = repository, !CodeCommitTarget.isValidName(name) {
                    report(value, "'\(name)' is not a valid CodeCommit repository name: 1-100 letters, digits, '.', '_' or '-', not ending in .git")
                    return nil
                }
            case "fips": fips = bool(value, "fips") ?? false
            default: break
            }
        }
        guard let repository else { report(node, "codecommit needs a repository:"); return nil }
        guard let region else { report(node, "codecommit needs a region: (or set AWS_REGION)"); return nil }
        let endpoint = endpoint ?? environment["CODE_COMMIT_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }
        return RemoteURL.codeCommit(CodeCommitTarget(region: region, repository: repository, profile: nil, fips: fips), endpoint: endpoint)
    }
}

private extension Node {
    var scalar: Node.Scalar? {
        if case .scalar(let scalar) = self { return scalar }
        return nil
    }
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}

/// Why `ADDRESS:PORT` (daemon.listen, --listen) cannot be listened on, or nil.
public func listenAddressProblem(_ text: String) -> String? {
    guard let colon = text.lastIndex(of: ":") else {
        return "listen must be ADDRESS:PORT, for example 127.0.0.1:9150 (got '\(text)')"
    }
    let portText = text[text.index(after: colon)...]
    guard let port = Int(portText) else {
        return "listen must be ADDRESS:PORT, for example 127.0.0.1:9150 (got '\(text)')"
    }
    guard (1...65535).contains(port) else {
        return "listen port \(port) is outside 1–65535 (in '\(text)')"
    }
    return nil
}

/// Why a notify URL is refused, or nil: it must be https, or plain http on loopback only.
public func notifyURLProblem(_ text: String) -> String? {
    guard let url = URL(string: text), url.scheme == "https" || url.scheme == "http", url.host?.isEmpty == false else {
        return "a notify target needs an http(s) url such as https://alerts.example.com/gitmirror"
    }
    let host = (url.host ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
    if url.scheme == "http" && !(host == "localhost" || host == "::1" || host.hasPrefix("127.")) {
        return "notify url \(url.scheme!)://\(url.host!)… is plain http to another machine: the alert (repository names, errors) and its signature travel in clear text; use https:// (plain http is accepted on loopback only)"
    }
    return nil
}
