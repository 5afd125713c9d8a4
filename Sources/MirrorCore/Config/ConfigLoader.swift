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

    var urlContext: URLContext {
        URLContext(base: base, defaultRegion: defaultRegion, codeCommitEndpoint: environment["CODE_COMMIT_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 })
    }

    mutating func url(_ node: Node, allowInsecure: Bool, endpoint: String? = nil) -> RemoteURL? {
        guard let text = string(node, "url") else { return nil }
        switch RemoteURL.parseChecked(text, context: urlContext, allowInsecure: allowInsecure, endpoint: endpoint) {
        case .success(let url): return url
        case .failure(let problem):
            report(node, problem.message)
            return nil
        }
    }

    // MARK: the document

    mutating func config(_ root: Node) -> Config? {
        guard let pairs = mapping(root, allowed: ["state_dir", "defaults", "credentials", "repositories", "discover", "max_parallel_pushes", "daemon", "retention"], what: "the top level") else { return nil }
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
        var discoverNode: Node?
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
            case "discover": discoverNode = value
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
        let credentialNames = Set(credentialNodes.compactMap { $0.0.scalar?.string })
        var sources: [DiscoverySource] = []
        if let discoverNode {
            if case .sequence(let items) = discoverNode, !items.isEmpty {
                var ids: [String: Node] = [:]
                for item in items {
                    guard let source = discoverySource(item, defaults: defaults, credentials: credentials, credentialNames: credentialNames) else { continue }
                    if let previous = ids[source.id] {
                        report(item, "the source \(source.id) is listed twice (first at line \(previous.mark?.line ?? 0)); merge the two entries")
                        continue
                    }
                    ids[source.id] = item
                    sources.append(source)
                }
            } else {
                report(discoverNode, "discover must be a non-empty list of sources, each with one of github:, gitlab:, gitea: or codecommit:")
            }
        }
        guard let repositoriesNode else {
            if discoverNode != nil {
                return Config(file: file, stateDirectory: stateDirectory, maxParallelPushes: maxParallel, credentials: credentials,
                              repositories: [], discover: sources, daemon: daemonSettings, retention: retention)
            }
            report(root, "missing 'repositories:': list at least one repository with a primary and secondaries (or a discover: source)")
            return nil
        }
        guard case .sequence(let sequence) = repositoriesNode else {
            report(repositoriesNode, "repositories must be a list (each item starts with '- name:')")
            return nil
        }
        var mirrors: [Mirror] = []
        var names: [String: (name: String, node: Node)] = [:]
        for item in sequence {
            guard let mirror = mirror(item, defaults: defaults, credentials: credentials, credentialNames: credentialNames) else { continue }
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
        if sequence.isEmpty && discoverNode == nil { report(repositoriesNode, "repositories is empty: list at least one repository") }
        checkSharedSecondaries(mirrors)
        checkCycles(mirrors)
        return Config(file: file, stateDirectory: stateDirectory, maxParallelPushes: maxParallel, credentials: credentials,
                      repositories: mirrors, discover: sources, daemon: daemonSettings, retention: retention)
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

    /// A size in bytes: a number, or a number with KiB, MiB or GiB (`16MiB`).
    mutating func byteSize(_ node: Node, _ what: String, minimum: Int) -> Int? {
        guard let text = string(node, what)?.trimmingCharacters(in: .whitespaces) else { return nil }
        let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("", 1)]
        for (unit, factor) in units where text.hasSuffix(unit) {
            let number = text.dropLast(unit.count).trimmingCharacters(in: .whitespaces)
            guard let value = Int(number), value >= 0, value <= Int.max / factor else { break }
            guard value * factor >= minimum else {
                report(node, "\(what) must be at least \(minimum >> 10)KiB (got '\(text)')")
                return nil
            }
            return value * factor
        }
        report(node, "\(what) takes a size such as 16MiB, 512KiB or a number of bytes (got '\(text)')")
        return nil
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
        let keys = ["listen", "interval", "max_parallel_repositories", "max_connections_per_host", "max_connections", "shutdown_grace",
                    "retry_base", "retry_cap", "start_spread", "discover_interval", "hooks", "notify", "peers", "http"]
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

    mutating func policy(_ node: Node, inheriting parent: Policy, what: String, extraKeys: [String] = []) -> Policy {
        var policy = parent
        let keys = ["refs", "force", "prune", "max_deletes", "timeout", "stall_timeout", "lfs", "change_check", "verify_interval"]
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
        let policyKeys = role == .secondary ? ["refs", "force", "prune", "max_deletes", "timeout", "stall_timeout", "lfs"]
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

extension RemoteURL {
    /// Parses an address as mirrors.yaml takes it: a valid CodeCommit name, and plain http only on
    /// loopback or with allow_insecure. The failure says what is wrong.
    public static func parseChecked(_ text: String, context: URLContext, allowInsecure: Bool, endpoint: String?) -> Result<RemoteURL, AddressProblem> {
        do {
            let endpoint = endpoint ?? context.codeCommitEndpoint
            var url = try RemoteURL.parse(text, relativeTo: context.base, defaultRegion: context.defaultRegion, codeCommitEndpoint: endpoint)
            if let target = url.codeCommit {
                if !CodeCommitTarget.isValidName(target.repository) {
                    return .failure(AddressProblem("'\(target.repository)' is not a valid CodeCommit repository name: 1-100 letters, digits, '.', '_' or '-', not ending in .git"))
                }
                if let endpoint, url.scheme == .https { url = RemoteURL.codeCommit(target, endpoint: endpoint) }
            }
            if url.scheme == .http && !url.isLoopback && !allowInsecure {
                return .failure(AddressProblem("http:// sends credentials and code in clear text; use https://, or set allow_insecure: true on this remote"))
            }
            return .success(url)
        } catch {
            return .failure(AddressProblem(error.description))
        }
    }
}
