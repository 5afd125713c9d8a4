import Foundation

/// Gitea's and Forgejo's REST API v1: https://gitea.com/api/swagger
struct GiteaAPI: ReposForge {
    static let forge = "Gitea"
    static let movedField = "updated_at"
    let rest: ForgeREST

    func repositories(of owner: String, subgroups: Bool) throws(SyncFailure) -> [DiscoveredRepository] {
        let what = "listing the repositories of \(owner) on Gitea (\(rest.api.host ?? ""))"
        let organisation = try rest.send("GET", rest.url("/orgs/\(ForgeREST.encode(owner))"), doing: what)
        let first: URL
        switch organisation.status {
        case 200: first = rest.url("/orgs/\(ForgeREST.encode(owner))/repos", query: [("limit", "50")])
        case 404:
            if try rest.login()?.lowercased() == owner.lowercased() {
                first = rest.url("/user/repos", query: [("limit", "50")])
            } else {
                first = rest.url("/users/\(ForgeREST.encode(owner))/repos", query: [("limit", "50")])
            }
        default: throw rest.failure(organisation, doing: what)
        }
        do {
            // The token's own listing holds repositories it collaborates on: keep the owner's.
            return try rest.pages(first, doing: what).compactMap(Self.repository).filter { $0.owner.lowercased() == owner.lowercased() }
        } catch where error.errorClass == .notFound {
            throw SyncFailure(.notFound, "\(what): there is no organisation or user named \(owner)")
        }
    }

    static func repository(_ item: [String: Any]) -> DiscoveredRepository? {
        ForgeREST.repository(item, visibility: item.flag("internal") ? "internal" : item.flag("private") ? "private" : "public")
    }

    func createRepository(at path: String, visibility: String, description: String?) throws(SyncFailure) {
        let (owner, name) = try splitPath(path)
        let what = "creating \(path) on Gitea"
        let organisation = try rest.send("GET", rest.url("/orgs/\(ForgeREST.encode(owner))"), doing: what)
        let target: URL
        if organisation.status == 200 {
            target = rest.url("/orgs/\(ForgeREST.encode(owner))/repos")
        } else if organisation.status == 404, try rest.login()?.lowercased() == owner.lowercased() {
            target = rest.url("/user/repos")
        } else if organisation.status == 404 {
            throw SyncFailure(.auth, "\(what): \(owner) is not an organisation, and the token is not theirs; a repository can be created only in an organisation or in the token's own account")
        } else {
            throw rest.failure(organisation, doing: what)
        }
        var body: [String: Any] = ["name": name, "private": visibility != "public", "auto_init": false]
        if let description { body["description"] = description }
        let answer = try rest.send("POST", target, body: body, doing: what)
        switch answer.status {
        case 201, 409: return   // 409: "The repository with the same name already exists."
        default: throw rest.failure(answer, doing: what)
        }
    }
}
