"""Gitea's (and Forgejo's) REST API v1 on loopback, as documented in its swagger (orgs, users, repos):
page/limit pagination with Link and X-Total-Count, limit up to 50, 409 for a name that is taken."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forge_api_common import ForgeHandler, serve  # noqa: E402


class Gitea(ForgeHandler):
    prefix = "/api/v1"
    max_page = 50
    page_parameter = "limit"

    def not_found(self):
        return {"message": "The target couldn't be found.", "url": "", "errors": []}

    def unauthorized(self):
        return {"message": "token is required", "url": ""}

    def represent(self, state, repository):
        owner, name = repository["path"].rsplit("/", 1)
        visibility = repository.get("visibility", "private")
        return {"id": abs(hash(repository["path"])) % 10**8, "name": name, "full_name": repository["path"],
                "owner": {"login": owner}, "private": visibility != "public", "internal": visibility == "internal",
                "description": repository.get("description") or "", "fork": repository.get("fork", False),
                "archived": repository.get("archived", False), "mirror": False,
                "default_branch": repository.get("default_branch", "main"),
                "updated_at": self.timestamp(self.last_push(state, repository["path"])),
                "clone_url": self.clone_url(state, repository["path"]), "ssh_url": "git@gitea.example:%s.git" % repository["path"]}

    def total(self, number, last, size, total):
        return {"X-Total-Count": str(total)}

    def page(self, items, query, state, extra_headers=None):
        ForgeHandler.page(self, items, query, state, self.total)

    def owned(self, state, owner):
        return [self.represent(state, r) for r in sorted(state.get("repositories", []), key=lambda r: r["path"])
                if r["path"].split("/")[0].lower() == owner.lower()]

    def route(self, method, parts, query, body, state):
        accounts = state.get("accounts", {})
        login = state.get("login", "mirror-bot")
        if method == "GET" and parts == ["user"]:
            return self.reply(200, {"login": login, "id": 1})
        if method == "GET" and len(parts) == 2 and parts[0] == "orgs":
            if accounts.get(parts[1]) != "Organization":
                return self.reply(404, self.not_found())
            return self.reply(200, {"username": parts[1], "id": 2})
        if method == "GET" and len(parts) == 3 and parts[0] in ("orgs", "users") and parts[2] == "repos":
            if parts[1] not in accounts or (parts[0] == "orgs") != (accounts[parts[1]] == "Organization"):
                return self.reply(404, self.not_found())
            if self.rate_limited(state):
                return
            return self.page(self.owned(state, parts[1]), query, state)
        if method == "GET" and parts == ["user", "repos"]:
            return self.page(self.owned(state, login), query, state)
        if method == "POST" and (parts == ["user", "repos"] or (len(parts) == 3 and parts[0] == "orgs" and parts[2] == "repos")):
            owner = login if parts[0] == "user" else parts[1]
            if parts[0] == "orgs" and accounts.get(owner) != "Organization":
                return self.reply(404, self.not_found())
            path = "%s/%s" % (owner, body.get("name") or "")
            if not self.add(state, path, body.get("description"), "private" if body.get("private") else "public"):
                return self.reply(409, {"message": "The repository with the same name already exists.", "url": ""})
            return self.reply(201, self.represent(state, self.find(state, path)))
        if len(parts) == 3 and parts[0] == "repos":
            return self.repository_at(state, method, parts, body, 422, {"message": "branch does not exist", "url": ""})
        return self.reply(404, self.not_found())


serve(Gitea)
