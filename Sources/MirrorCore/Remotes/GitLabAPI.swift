import Foundation

/// GitLab's REST API v4: https://docs.gitlab.com/api/projects/ and https://docs.gitlab.com/api/groups/
struct GitLabAPI: ForgeClient {
    let rest: ForgeREST

    func repositories(of owner: String, subgroups: Bool) throws(SyncFailure) -> [DiscoveredRepository] {
        let what = "listing the projects of \(owner) on GitLab (\(rest.api.host ?? ""))"
        // A group's full path is one URL segment: `platform%2Ftools`.
        let group = rest.url("/groups/\(ForgeREST.encode(owner))/projects",
                             query: [("include_subgroups", subgroups ? "true" : "false"), ("with_shared", "false"), ("per_page", "100"),
                                     ("order_by", "id"), ("sort", "asc")])
        do {
            return try rest.pages(group, doing: what).compactMap(Self.project)
        } catch where error.errorClass == .notFound && !owner.contains("/") {
            // Not a group: a user's personal projects.
            let lookup = try rest.send("GET", rest.url("/users", query: [("username", owner)]), doing: what)
            guard lookup.status == 200, let users = lookup.json as? [[String: Any]], let id = users.first?["id"] as? Int else {
                throw SyncFailure(.notFound, "\(what): there is no group or user named \(owner)")
            }
            return try rest.pages(rest.url("/users/\(id)/projects", query: [("per_page", "100"), ("order_by", "id"), ("sort", "asc")]), doing: what)
                .compactMap(Self.project)
        }
    }

    static func project(_ item: [String: Any]) -> DiscoveredRepository? {
        guard let path = item.string("path_with_namespace"), let name = item.string("path"), let clone = item.string("http_url_to_repo") else { return nil }
        return DiscoveredRepository(path: path, name: name, cloneURL: clone, sshURL: item.string("ssh_url_to_repo"), defaultBranch: item.string("default_branch"),
                                    description: item.string("description"), visibility: item.string("visibility") ?? "private",
                                    archived: item.flag("archived"), fork: item["forked_from_project"] is [String: Any])
    }

    func repository(at path: String) throws(SyncFailure) -> DiscoveredRepository? {
        try rest.object(rest.url("/projects/\(ForgeREST.encode(path))"), doing: "looking up \(path) on GitLab").flatMap(Self.project)
    }

    func createRepository(at path: String, visibility: String, description: String?) throws(SyncFailure) {
        let (namespace, name) = try splitPath(path)
        let what = "creating \(path) on GitLab"
        let lookup = try rest.send("GET", rest.url("/namespaces/\(ForgeREST.encode(namespace))"), doing: what)
        guard lookup.status == 200, let object = lookup.json as? [String: Any], let id = object["id"] as? Int else {
            throw lookup.status == 404 ? SyncFailure(.notFound, "\(what): there is no group or user namespace \(namespace) that the token can see") : rest.failure(lookup, doing: what)
        }
        var body: [String: Any] = ["name": name, "path": name, "namespace_id": id, "visibility": visibility]
        if let description { body["description"] = description }
        let answer = try rest.send("POST", rest.url("/projects"), body: body, doing: what)
        switch answer.status {
        case 201: return
        // {"message": {"path": ["has already been taken"]}}: another creator was first.
        case 400 where String(decoding: answer.body, as: UTF8.self).contains("has already been taken"): return
        default: throw rest.failure(answer, doing: what)
        }
    }

    func setDefaultBranch(of path: String, to branch: String) throws(SyncFailure) {
        try rest.change("PUT", rest.url("/projects/\(ForgeREST.encode(path))"), body: ["default_branch": branch],
                        doing: "setting the default branch of \(path) on GitLab to \(branch)")
    }

    /// The project's newest event: every push is one (`pushed to`, `pushed new`, `deleted`). The
    /// project's own `last_activity_at` is not used: GitLab moves it at most once an hour.
    func changeMarker(of path: String, etag: String?) throws(SyncFailure) -> ChangeMarker? {
        let url = rest.url("/projects/\(ForgeREST.encode(path))/events", query: [("per_page", "1")])
        return try rest.conditional(url, etag: etag, doing: "asking GitLab whether \(path) changed") { newest in
            ("event=\((newest["id"] as? Int).map(String.init) ?? newest.string("created_at") ?? "-")", ForgeREST.time(newest.string("created_at")))
        }
    }
}
