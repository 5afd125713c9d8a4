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
        var walker = ConfigWalker(file: file, environment: environment)
        walker.requireEnvironment = requireEnvironment
        walker.defaultRegion = defaultRegion ?? [environment["AWS_REGION"], environment["AWS_DEFAULT_REGION"]].compactMap { $0 }.first { !$0.isEmpty }
        let root: Node?
        do {
            // `.basic`: no implicit tags. The walker reads every scalar's text itself (a bool, a
            // number, a duration), so Yams' default resolver, which matches each plain scalar
            // against NSRegularExpressions (ICU's engine, ~2 MiB of every process), decides nothing.
            root = try Yams.compose(yaml: text, .basic)
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

struct ConfigWalker {
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

}

extension Node {
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
