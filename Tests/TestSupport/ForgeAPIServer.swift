import Foundation
import MirrorCore

/// A loopback GitHub, GitLab or Gitea REST API (Tests/Fixtures/{github,gitlab,gitea}_api.py) over a
/// state file this side writes and the server updates: accounts, repositories, rate limits.
public final class ForgeAPIServer: Server, @unchecked Sendable {
    public let kind: ForgeKind
    public let port: Int
    public let stateFile: URL
    public let log: URL
    private let process: ChildProcess

    /// `gitRoot`: where a repository created through the API is made (bare, `<path>.git`);
    /// `cloneBase`: what its clone URLs start with (`<cloneBase>/<path>.git`).
    public init(sandbox: Sandbox, kind: ForgeKind, token: String?, login: String = "mirror-bot", accounts: [String: String],
                gitRoot: URL? = nil, cloneBase: String? = nil, maxPerPage: Int? = nil) throws {
        self.kind = kind
        let directory = try sandbox.directory("\(kind.rawValue)-api-\(UUID().uuidString.prefix(8).lowercased())")
        stateFile = directory.appendingPathComponent("state.json")
        log = directory.appendingPathComponent("requests.log")
        var state: [String: Any] = ["login": login, "accounts": accounts, "repositories": [[String: Any]]()]
        if let token { state["token"] = token }
        if let gitRoot { state["git_root"] = gitRoot.path }
        if let cloneBase { state["clone_base"] = cloneBase }
        if let maxPerPage { state["max_per_page"] = maxPerPage }
        try Self.write(state, to: stateFile)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/\(kind.rawValue)_api.py")
        let out = directory.appendingPathComponent("server.out")
        (port, process, _) = try Network.serve { [stateFile, log] port in
            (try Shell.start(["/usr/bin/env", "python3", script.path, "--port", "\(port)", "--state", stateFile.path, "--log", log.path], log: out), out)
        }
        sandbox.keep(self)
    }

    /// The API root, as mirrors.yaml's `api:` takes it.
    public var api: String {
        switch kind {
        case .github: return "http://127.0.0.1:\(port)"
        case .gitlab: return "http://127.0.0.1:\(port)/api/v4"
        case .gitea: return "http://127.0.0.1:\(port)/api/v1"
        }
    }

    static func write(_ state: [String: Any], to file: URL) throws {
        let data = try JSONSerialization.data(withJSONObject: state, options: [.prettyPrinted, .sortedKeys])
        let temporary = file.appendingPathExtension("new")
        try data.write(to: temporary)
        guard rename(temporary.path, file.path) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    /// Reads, changes and writes the state (the server reads it at every request).
    public func update(_ change: (inout [String: Any]) -> Void) throws {
        var state = try JSONSerialization.jsonObject(with: Data(contentsOf: stateFile)) as? [String: Any] ?? [:]
        change(&state)
        try Self.write(state, to: stateFile)
    }

    public var state: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(contentsOf: stateFile))) as? [String: Any] ?? [:] }

    /// The repositories as the server holds them now.
    public var repositories: [[String: Any]] { state["repositories"] as? [[String: Any]] ?? [] }

    public func repository(_ path: String) -> [String: Any]? { repositories.first { ($0["path"] as? String) == path } }

    public func add(_ path: String, description: String? = nil, visibility: String = "private", archived: Bool = false, fork: Bool = false,
                    defaultBranch: String = "main") throws {
        try update { state in
            var list = state["repositories"] as? [[String: Any]] ?? []
            var entry: [String: Any] = ["path": path, "visibility": visibility, "archived": archived, "fork": fork, "default_branch": defaultBranch]
            if let description { entry["description"] = description }
            list.append(entry)
            state["repositories"] = list
        }
    }

    public func remove(_ path: String) throws {
        try update { state in
            state["repositories"] = (state["repositories"] as? [[String: Any]] ?? []).filter { ($0["path"] as? String) != path }
        }
    }

    /// The next `count` listing requests are refused as the forge refuses a used-up quota, for `retryAfter` seconds.
    public func rateLimit(count: Int, retryAfter: Int, style: String = "retry-after") throws {
        try update { $0["rate_limit"] = ["count": count, "retry_after": retryAfter, "style": style] }
    }

    /// The requests the server saw, one `METHOD /path?query` each.
    public var requests: [String] {
        ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    public func stop() { terminate(process) }
}
