import Foundation

/// GitHub's REST API (github.com and GitHub Enterprise Server): https://docs.github.com/en/rest/repos/repos
struct GitHubAPI: ReposForge {
    static let forge = "GitHub"
    static let movedField = "pushed_at"
    let rest: ForgeREST

    func repositories(of owner: String, subgroups: Bool) throws(SyncFailure) -> [DiscoveredRepository] {
        let what = "listing the repositories of \(owner) on GitHub (\(rest.api.host ?? ""))"
        let account = rest.url("/users/\(ForgeREST.encode(owner))")
        let answer = try rest.send("GET", account, doing: what)
        guard answer.status == 200, let object = answer.json as? [String: Any] else {
            throw answer.status == 404 ? SyncFailure(.notFound, "\(what): there is no organisation or user named \(owner)") : rest.failure(answer, doing: what)
        }
        let first: URL
        if object.string("type") == "Organization" {
            first = rest.url("/orgs/\(ForgeREST.encode(owner))/repos", query: [("type", "all"), ("per_page", "100")])
        } else if try rest.login()?.lowercased() == owner.lowercased() {
            // The token's own account: its private repositories too.
            first = rest.url("/user/repos", query: [("affiliation", "owner"), ("visibility", "all"), ("per_page", "100")])
        } else {
            first = rest.url("/users/\(ForgeREST.encode(owner))/repos", query: [("type", "owner"), ("per_page", "100")])
        }
        return try rest.pages(first, doing: what).compactMap(Self.repository)
    }

    static func repository(_ item: [String: Any]) -> DiscoveredRepository? {
        ForgeREST.repository(item, visibility: item.string("visibility") ?? (item.flag("private") ? "private" : "public"))
    }

    func createRepository(at path: String, visibility: String, description: String?) throws(SyncFailure) {
        let (owner, name) = try splitPath(path)
        let what = "creating \(path) on GitHub"
        let account = try rest.send("GET", rest.url("/users/\(ForgeREST.encode(owner))"), doing: what)
        guard account.status == 200, let object = account.json as? [String: Any] else {
            throw account.status == 404 ? SyncFailure(.notFound, "\(what): there is no organisation or user named \(owner)") : rest.failure(account, doing: what)
        }
        let target: URL
        if object.string("type") == "Organization" {
            target = rest.url("/orgs/\(ForgeREST.encode(owner))/repos")
        } else if try rest.login()?.lowercased() == owner.lowercased() {
            target = rest.url("/user/repos")
        } else {
            throw SyncFailure(.auth, "\(what): \(owner) is a user, and the token is not theirs; a repository can be created only in an organisation or in the token's own account")
        }
        var body: [String: Any] = ["name": name, "private": visibility != "public", "has_issues": false, "has_wiki": false, "has_projects": false]
        if visibility == "internal" { body["visibility"] = "internal" }
        if let description { body["description"] = description }
        let answer = try rest.send("POST", target, body: body, doing: what)
        switch answer.status {
        case 201: return
        // "name already exists on this account": another creator was first, or a listing was stale.
        case 422 where String(decoding: answer.body, as: UTF8.self).lowercased().contains("already exists"): return
        default: throw rest.failure(answer, doing: what)
        }
    }
}

/// `owner/name` (GitLab: `group/sub/name`) into its namespace and its last part.
func splitPath(_ path: String) throws(SyncFailure) -> (owner: String, name: String) {
    guard let slash = path.lastIndex(of: "/"), slash != path.startIndex, path.index(after: slash) != path.endIndex else {
        throw SyncFailure(.config, "'\(path)' is not OWNER/NAME: the address must name the owner and the repository")
    }
    return (String(path[..<slash]), String(path[path.index(after: slash)...]))
}
