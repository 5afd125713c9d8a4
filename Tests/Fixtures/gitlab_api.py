"""GitLab's REST API v4 on loopback, as documented at https://docs.gitlab.com/api/ (groups, projects,
namespaces, users): offset pagination with X-Next-Page (and Link), per_page up to 100, 429 with
Retry-After, 400 "has already been taken" for a path that is taken."""
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forge_api_common import ForgeHandler, serve  # noqa: E402


class GitLab(ForgeHandler):
    prefix = "/api/v4"

    def not_found(self):
        return {"message": "404 Not Found"}

    def unauthorized(self):
        return {"message": "401 Unauthorized"}

    def represent(self, state, repository):
        namespace, name = repository["path"].rsplit("/", 1)
        project = {"id": abs(hash(repository["path"])) % 10**8, "path": name, "name": name,
                   "path_with_namespace": repository["path"], "namespace": {"full_path": namespace},
                   "visibility": repository.get("visibility", "private"), "description": repository.get("description"),
                   "archived": repository.get("archived", False), "default_branch": repository.get("default_branch", "main"),
                   "http_url_to_repo": self.clone_url(state, repository["path"]),
                   "ssh_url_to_repo": "git@gitlab.example:%s.git" % repository["path"]}
        if repository.get("fork"):
            project["forked_from_project"] = {"id": 1, "path_with_namespace": "upstream/" + name}
        return project

    def pagination_headers(self, number, last, size, total):
        return {"X-Page": str(number), "X-Per-Page": str(size), "X-Next-Page": str(number + 1) if number < last else "",
                "X-Prev-Page": str(number - 1) if number > 1 else "", "X-Total": str(total), "X-Total-Pages": str(last)}

    def page(self, items, query, state, extra_headers=None):
        ForgeHandler.page(self, items, query, state, self.pagination_headers)

    def route(self, method, parts, query, body, state):
        accounts = state.get("accounts", {})
        repositories = sorted(state.get("repositories", []), key=lambda r: r["path"])
        if method == "GET" and len(parts) == 3 and parts[0] == "groups" and parts[2] == "projects":
            group = parts[1]
            if accounts.get(group) != "Group":
                return self.reply(404, {"message": "404 Group Not Found"})
            if self.rate_limited(state):
                return
            subgroups = query.get("include_subgroups") == "true"
            listed = [r for r in repositories if r["path"].rsplit("/", 1)[0].lower() == group.lower()
                      or (subgroups and r["path"].lower().startswith(group.lower() + "/"))]
            return self.page([self.represent(state, r) for r in listed], query, state)
        if method == "GET" and parts == ["users"]:
            name = query.get("username", "")
            return self.reply(200, [{"id": 7, "username": name}] if accounts.get(name) == "User" else [])
        if method == "GET" and len(parts) == 3 and parts[0] == "users" and parts[2] == "projects":
            user = next((n for n, k in accounts.items() if k == "User"), "")
            listed = [r for r in repositories if r["path"].split("/")[0] == user]
            return self.page([self.represent(state, r) for r in listed], query, state)
        if method == "GET" and len(parts) == 2 and parts[0] == "namespaces":
            if parts[1] not in accounts:
                return self.reply(404, {"message": "404 Namespace Not Found"})
            return self.reply(200, {"id": abs(hash(parts[1])) % 10**6, "full_path": parts[1],
                                    "kind": "group" if accounts[parts[1]] == "Group" else "user"})
        if method == "POST" and parts == ["projects"]:
            namespace = next((n for n in accounts if abs(hash(n)) % 10**6 == body.get("namespace_id")), None)
            if namespace is None:
                return self.reply(404, {"message": "404 Namespace Not Found"})
            path = "%s/%s" % (namespace, body.get("path") or body.get("name"))
            if not self.add(state, path, body.get("description"), body.get("visibility", "private")):
                return self.reply(400, {"message": {"name": ["has already been taken"], "path": ["has already been taken"]}})
            return self.reply(201, self.represent(state, self.find(state, path)))
        if method == "GET" and len(parts) == 3 and parts[0] == "projects" and parts[2] == "events":
            # The newest first; a push is an event with a new, larger id.
            repository = self.find(state, parts[1])
            if repository is None:
                return self.reply(404, {"message": "404 Project Not Found"})
            pushed = self.last_push(state, repository["path"])
            events = [] if pushed is None else [{"id": int(pushed * 1000), "action_name": "pushed to",
                                                  "created_at": self.timestamp(pushed)}]
            return self.reply(200, events[:int(query.get("per_page", "20"))])
        if len(parts) == 2 and parts[0] == "projects":
            repository = self.find(state, parts[1])
            if repository is None:
                return self.reply(404, {"message": "404 Project Not Found"})
            if method == "GET":
                return self.reply(200, self.represent(state, repository))
            if method == "PUT":
                return self.patch(state, repository, body, 400, {"message": "Could not change HEAD: branch does not exist"})
        return self.reply(404, self.not_found())


serve(GitLab)
