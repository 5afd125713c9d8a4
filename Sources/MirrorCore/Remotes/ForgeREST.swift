import Foundation

/// What gitmirror asks of a forge's API (GitHub, GitLab, Gitea/Forgejo): list an owner's
/// repositories, create one, set its default branch.
public protocol ForgeClient: Sendable {
    /// Every repository of an organisation, user or group (a GitLab group's subgroups too when asked).
    func repositories(of owner: String, subgroups: Bool) throws(SyncFailure) -> [DiscoveredRepository]
    /// The repository at `path` (`acme/widget`), or nil when there is none.
    func repository(at path: String) throws(SyncFailure) -> DiscoveredRepository?
    /// Creates the repository at `path`; one that exists already (another creator was first) is no failure.
    func createRepository(at path: String, visibility: String, description: String?) throws(SyncFailure)
    /// Points the repository's HEAD at `branch` (a name without refs/heads/).
    func setDefaultBranch(of path: String, to branch: String) throws(SyncFailure)
    /// What the API says of the repository's last change, asked conditionally on `etag` (the ETag of
    /// the last answer): `.notModified` when the API says its answer is the same (HTTP 304), else a
    /// marker that any push changes. nil when the repository is not there (or not visible).
    func changeMarker(of path: String, etag: String?) throws(SyncFailure) -> ChangeMarker?
}

/// A forge's answer to "did this repository change?".
public enum ChangeMarker: Sendable, Equatable {
    /// 304: the same answer as for the ETag sent.
    case notModified
    /// The answer: a marker any push changes (GitHub's `pushed_at`, GitLab's newest event, Gitea's
    /// `updated_at`, each with the default branch where the answer has it), the answer's ETag, and
    /// the time of that change where the API says it (to the second).
    case marker(String, etag: String?, changedAt: Date?)
}

/// Makes the client for a forge endpoint.
public func forgeClient(_ endpoint: ForgeEndpoint, token: String?, caBundle: String? = nil,
                        maxAnswerSize: Int = DiscoverySource.defaultMaxAnswerSize) -> any ForgeClient {
    let rest = ForgeREST(api: endpoint.api, authorization: token.map { endpoint.kind.authorization(token: $0) }, caBundle: caBundle,
                         maxAnswerSize: maxAnswerSize)
    switch endpoint.kind {
    case .github: return GitHubAPI(rest: rest)
    case .gitlab: return GitLabAPI(rest: rest)
    case .gitea: return GiteaAPI(rest: rest)
    }
}

extension ForgeKind {
    /// The header each forge documents for a token.
    func authorization(token: String) -> (name: String, value: String) {
        switch self {
        case .github, .gitlab: return ("Authorization", "Bearer \(token)")
        case .gitea: return ("Authorization", "token \(token)")
        }
    }

    public var displayName: String {
        switch self {
        case .github: return "GitHub"
        case .gitlab: return "GitLab"
        case .gitea: return "Gitea"
        }
    }
}

/// JSON over HTTPS with a token: pagination that stays on the API's own origin, and rate limits
/// waited out when they end soon, or reported (`rate_limited`) when they do not — never hammered.
struct ForgeREST: Sendable {
    let api: URL
    let authorization: (name: String, value: String)?
    let http: HTTPClient
    /// A rate limit that ends within this long is waited out; a longer one ends the call.
    var maxWait: TimeInterval = 60
    /// At most this many pages of one listing (100 000 repositories at 100 a page).
    var maxPages = 1000

    init(api: URL, authorization: (name: String, value: String)?, caBundle: String? = nil, maxAnswerSize: Int = DiscoverySource.defaultMaxAnswerSize) {
        self.api = api
        self.authorization = authorization
        // Every answer is read with a cap (max_answer_size:): an API sets neither this process's memory nor its time.
        self.http = HTTPClient(timeout: 30, caBundle: caBundle, maxBodySize: maxAnswerSize)
    }

    struct Answer {
        var status: Int
        var headers: [String: String]
        var json: Any?
        var body: Data
    }

    /// `path` below the API root, with a query.
    func url(_ path: String, query: [(String, String)] = []) -> URL {
        var components = URLComponents(url: api, resolvingAgainstBaseURL: false)!
        // The path is sent as written (percent-encoded parts stay encoded: GitLab's `groups/a%2Fb`).
        components.percentEncodedPath = api.path + path
        if !query.isEmpty { components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        return components.url!
    }

    /// One request; a rate limit that ends soon is waited out (at most three times).
    func send(_ method: String, _ url: URL, body: [String: Any]? = nil, headers extra: [String: String] = [:], doing what: String) throws(SyncFailure) -> Answer {
        var headers = ["Accept": "application/json", "User-Agent": "gitmirror"].merging(extra) { $1 }
        if api.host == "api.github.com" || api.path.hasSuffix("/api/v3") {
            headers["Accept"] = "application/vnd.github+json"
            headers["X-GitHub-Api-Version"] = "2022-11-28"
        }
        if let authorization { headers[authorization.name] = authorization.value }
        var payload: Data?
        if let body {
            payload = try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
            headers["Content-Type"] = "application/json"
        }
        for attempt in 0...3 {
            let response = try http.send(method, url, headers: headers, body: payload)
            if let wait = Self.rateLimitWait(response) {
                guard wait <= maxWait, attempt < 3 else {
                    throw SyncFailure(.rateLimited, "\(what): the API's rate limit is used up and resets in \(formatDuration(max(wait, 1))); nothing more was asked of it, and the next run tries again")
                }
                Thread.sleep(forTimeInterval: max(wait, 0.5))
                continue
            }
            return Answer(status: response.status, headers: response.headers, json: try? JSONSerialization.jsonObject(with: response.body), body: response.body)
        }
        throw SyncFailure(.rateLimited, "\(what): the API's rate limit")
    }

    /// How long to wait before asking again, when the answer is a rate limit: `Retry-After`, or the
    /// reset time of a used-up quota (GitHub's `X-RateLimit-*`, GitLab's `RateLimit-*`).
    static func rateLimitWait(_ response: HTTPClient.Response, now: Date = Date()) -> TimeInterval? {
        guard response.status == 429 || response.status == 403 else { return nil }
        if let retry = response.headers["retry-after"] {
            if let seconds = Double(retry.trimmingCharacters(in: .whitespaces)) { return seconds }
            if let date = CodeCommitAPI.httpDate(retry) { return max(0, date.timeIntervalSince(now)) }
        }
        for prefix in ["x-ratelimit-", "ratelimit-"] where response.headers[prefix + "remaining"] == "0" {
            if let reset = response.headers[prefix + "reset"].flatMap(Double.init) {
                // An epoch time (GitHub, GitLab); a small number is seconds from now (the IETF draft).
                return reset > 1_000_000_000 ? max(0, reset - now.timeIntervalSince1970) + 1 : reset
            }
            return 60
        }
        return response.status == 429 ? 60 : nil
    }

    /// A failure for an answer that is not a success: its class from the status, the API's message.
    func failure(_ answer: Answer, doing what: String) -> SyncFailure {
        let errorClass = Classification.forgeAPI(status: answer.status)
        var said = ""
        if let object = answer.json as? [String: Any] {
            if let message = object["message"] as? String { said = message }
            else if let message = object["message"], let data = try? JSONSerialization.data(withJSONObject: message, options: [.sortedKeys]) {
                said = String(decoding: data, as: UTF8.self)
            } else if let error = object["error"] as? String { said = error }
        } else {
            said = String(decoding: answer.body.prefix(200), as: UTF8.self)
        }
        let hint: String
        switch errorClass {
        case .auth: hint = "; the token is missing, refused, or lacks the permission (scope) this needs"
        case .notFound: hint = "; check the name, and that the token can see it"
        default: hint = ""
        }
        return SyncFailure(errorClass, "\(what): HTTP \(answer.status)\(said.isEmpty ? "" : " (\(said.prefix(300)))")\(hint)")
    }

    /// A GET of one object; nil when the API says it does not exist (404).
    func object(_ url: URL, doing what: String) throws(SyncFailure) -> [String: Any]? {
        let answer = try send("GET", url, doing: what)
        if answer.status == 404 { return nil }
        guard answer.status == 200, let object = answer.json as? [String: Any] else { throw failure(answer, doing: what) }
        return object
    }

    /// A conditional GET of one object (`If-None-Match`): nil when it is not there (404).
    func conditional(_ url: URL, etag: String?, doing what: String, marker: ([String: Any]) -> (String, Date?)) throws(SyncFailure) -> ChangeMarker? {
        let answer = try send("GET", url, headers: etag.map { ["If-None-Match": $0] } ?? [:], doing: what)
        if answer.status == 304 { return .notModified }
        if answer.status == 404 { return nil }
        guard answer.status == 200 else { throw failure(answer, doing: what) }
        let object: [String: Any]
        if let one = answer.json as? [String: Any] { object = one }
        else if let list = answer.json as? [[String: Any]] { object = list.first ?? [:] }
        else { throw SyncFailure(.internal, "\(what): the API answered with something that is not JSON") }
        let (text, changedAt) = marker(object)
        return .marker(text, etag: answer.headers["etag"], changedAt: changedAt)
    }

    /// An API's ISO 8601 time (`2026-11-23T07:31:02Z`, with or without fractions or an offset).
    static func time(_ text: String?) -> Date? {
        guard let text else { return nil }
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    /// A change the API must accept with `status`.
    /// GitHub's and Gitea's repository object alike (`full_name`, `clone_url`, `ssh_url`, …); `visibility` is read
    /// the way each forge says it.
    static func repository(_ item: [String: Any], visibility: String) -> DiscoveredRepository? {
        guard let path = item.string("full_name"), let name = item.string("name"), let clone = item.string("clone_url") else { return nil }
        return DiscoveredRepository(path: path, name: name, cloneURL: clone, sshURL: item.string("ssh_url"), defaultBranch: item.string("default_branch"),
                                    description: item.string("description"), visibility: visibility, archived: item.flag("archived"), fork: item.flag("fork"))
    }

    /// GitHub's and Gitea's alike: `GET /repos/{path}`, nil when there is none.
    func repository(at path: String, on forge: String, _ parse: ([String: Any]) -> DiscoveredRepository?) throws(SyncFailure) -> DiscoveredRepository? {
        try object(url("/repos/\(Self.encodedPath(path))"), doing: "looking up \(path) on \(forge)").flatMap(parse)
    }

    /// GitHub's and Gitea's alike: `PATCH /repos/{path}` with the new default branch.
    func setDefaultBranch(ofRepository path: String, to branch: String, on forge: String) throws(SyncFailure) {
        try change("PATCH", url("/repos/\(Self.encodedPath(path))"), body: ["default_branch": branch],
                   doing: "setting the default branch of \(path) on \(forge) to \(branch)")
    }

    /// GitHub's and Gitea's alike: the repository itself is the change marker, since `moved` (a time
    /// the forge moves on every push) and the default branch say whether it changed.
    func repositoryMarker(of path: String, moved field: String, etag: String?, on forge: String) throws(SyncFailure) -> ChangeMarker? {
        try conditional(url("/repos/\(Self.encodedPath(path))"), etag: etag, doing: "asking \(forge) whether \(path) changed") { object in
            ("\(field)=\(object.string(field) ?? "-") default_branch=\(object.string("default_branch") ?? "-")", Self.time(object.string(field)))
        }
    }

    func change(_ method: String, _ url: URL, body: [String: Any], doing what: String) throws(SyncFailure) {
        let answer = try send(method, url, body: body, doing: what)
        guard answer.status == 200 else { throw failure(answer, doing: what) }
    }

    /// The login the token belongs to (nil without a token, or when the API will not say).
    func login() throws(SyncFailure) -> String? {
        guard authorization != nil else { return nil }
        let answer = try send("GET", url("/user"), doing: "asking \(api.host ?? "the API") whom the token belongs to")
        guard answer.status == 200 else { return nil }
        return (answer.json as? [String: Any])?.string("login")
    }

    /// Every item of a paginated listing: the `next` link while there is one (on this API's origin
    /// only: the token never travels elsewhere), else GitLab's `X-Next-Page`.
    func pages(_ first: URL, doing what: String) throws(SyncFailure) -> [[String: Any]] {
        var items: [[String: Any]] = []
        var next: URL? = first
        var count = 0
        while let url = next {
            count += 1
            guard count <= maxPages else {
                throw SyncFailure(.internal, "\(what): more than \(maxPages) pages; narrow the source with include:")
            }
            let answer = try send("GET", url, doing: what)
            guard answer.status == 200 else { throw failure(answer, doing: what) }
            guard let page = answer.json as? [[String: Any]] else {
                throw SyncFailure(.internal, "\(what): the API answered with something that is not a list of repositories")
            }
            items += page
            next = nil
            if let link = answer.headers["link"], let target = Self.nextLink(link, relativeTo: url) {
                guard target.scheme == api.scheme, target.host == api.host, target.port == api.port else {
                    throw SyncFailure(.config, "\(what): the API's next page is on another server (\(target.scheme ?? "?")://\(target.host ?? "?")); it was not followed, so the token stays with \(api.host ?? "the API")")
                }
                next = target
            } else if let page = answer.headers["x-next-page"], !page.isEmpty, Int(page) != nil, !page.isEmpty {
                var components = URLComponents(url: url, resolvingAgainstBaseURL: false)!
                var query = (components.queryItems ?? []).filter { $0.name != "page" }
                query.append(URLQueryItem(name: "page", value: page))
                components.queryItems = query
                next = components.url
            }
            if page.isEmpty { next = nil }
        }
        return items
    }

    /// The `rel="next"` target of an RFC 8288 Link header.
    static func nextLink(_ header: String, relativeTo base: URL) -> URL? {
        for part in header.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let target = pieces.first, target.hasPrefix("<"), target.hasSuffix(">") else { continue }
            let rels = pieces.dropFirst().filter { $0.lowercased().hasPrefix("rel=") }
                .flatMap { $0.dropFirst(4).trimmingCharacters(in: CharacterSet(charactersIn: "\"")).split(separator: " ") }
            if rels.contains(where: { $0.lowercased() == "next" }) {
                return URL(string: String(target.dropFirst().dropLast()), relativeTo: base)?.absoluteURL
            }
        }
        return nil
    }

    /// A path's segments, each percent-encoded for use in a URL path (`a b/c` → `a%20b/c`).
    static func encodedPath(_ path: String) -> String {
        path.split(separator: "/").map { encode(String($0)) }.joined(separator: "/")
    }

    /// One segment, percent-encoded; for GitLab a whole `group/project` path becomes one segment (`%2F`).
    static func encode(_ segment: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return segment.addingPercentEncoding(withAllowedCharacters: allowed) ?? segment
    }
}

extension Dictionary where Key == String, Value == Any {
    func string(_ key: String) -> String? { (self[key] as? String).flatMap { $0.isEmpty ? nil : $0 } }
    func flag(_ key: String) -> Bool { self[key] as? Bool ?? false }
}

/// A forge whose repositories live at `/repos/{owner}/{name}` (GitHub's and Gitea's APIs): reading
/// one, pointing its HEAD and asking whether it changed are the same calls, told apart only by the
/// forge's name, how an item says its visibility and which field moves on a push.
protocol ReposForge: ForgeClient {
    /// The forge's name in messages: `GitHub`, `Gitea`.
    static var forge: String { get }
    /// The field of the repository that moves on every push (`pushed_at`, `updated_at`).
    static var movedField: String { get }
    /// One item of the API's repository lists, or nil when it is not one.
    static func repository(_ item: [String: Any]) -> DiscoveredRepository?
    var rest: ForgeREST { get }
}

extension ReposForge {
    func repository(at path: String) throws(SyncFailure) -> DiscoveredRepository? {
        try rest.repository(at: path, on: Self.forge, Self.repository)
    }

    func setDefaultBranch(of path: String, to branch: String) throws(SyncFailure) {
        try rest.setDefaultBranch(ofRepository: path, to: branch, on: Self.forge)
    }

    /// The repository itself; a 304 does not count against GitHub's rate limit.
    func changeMarker(of path: String, etag: String?) throws(SyncFailure) -> ChangeMarker? {
        try rest.repositoryMarker(of: path, moved: Self.movedField, etag: etag, on: Self.forge)
    }
}
