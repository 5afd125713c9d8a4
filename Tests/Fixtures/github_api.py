"""GitHub's REST API on loopback, as documented at https://docs.github.com/en/rest (repos, users, orgs):
pagination by Link header, per_page up to 100, 403/429 rate limits, 422 for a name that is taken."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forge_api_common import ForgeHandler, serve  # noqa: E402


class GitHub(ForgeHandler):
    def represent(self, state, repository):
        owner, name = repository["path"].rsplit("/", 1)
        visibility = repository.get("visibility", "private")
        answer = {"id": abs(hash(repository["path"])) % 10**8, "name": name, "full_name": repository["path"],
                "owner": {"login": owner, "type": state.get("accounts", {}).get(owner, "User")},
                "private": visibility != "public", "visibility": visibility, "description": repository.get("description"),
                "fork": repository.get("fork", False), "archived": repository.get("archived", False),
                "default_branch": repository.get("default_branch", "main"),
                "pushed_at": self.timestamp(self.last_push(state, repository["path"])),
                "clone_url": self.clone_url(state, repository["path"]),
                "ssh_url": "git@github.example:%s.git" % repository["path"]}
        # A broken or hostile API: fields the test sets replace what the server would say.
        answer.update(repository.get("answer", {}))
        if repository.get("description_bytes"):
            answer["description"] = "x" * int(repository["description_bytes"])
        return answer

    def owned(self, state, owner):
        return [self.represent(state, r) for r in sorted(state.get("repositories", []), key=lambda r: r["path"])
                if r["path"].split("/")[0].lower() == owner.lower()]

    def route(self, method, parts, query, body, state):
        accounts = state.get("accounts", {})
        if method == "GET" and parts == ["user"]:
            return self.reply(200, {"login": state.get("login", "mirror-bot"), "type": "User"})
        if method == "GET" and len(parts) == 2 and parts[0] == "users":
            kind = accounts.get(parts[1])
            if kind is None:
                return self.reply(404, self.not_found())
            return self.reply(200, {"login": parts[1], "type": kind})
        if method == "GET" and len(parts) == 3 and parts[0] in ("orgs", "users") and parts[2] == "repos":
            if (parts[0] == "orgs") != (accounts.get(parts[1]) == "Organization"):
                return self.reply(404, self.not_found())
            if self.rate_limited(state):
                return
            return self.page(self.owned(state, parts[1]), query, state)
        if method == "GET" and parts == ["user", "repos"]:
            if self.rate_limited(state):
                return
            return self.page(self.owned(state, state.get("login", "mirror-bot")), query, state)
        if method == "POST" and (parts == ["user", "repos"] or (len(parts) == 3 and parts[0] == "orgs" and parts[2] == "repos")):
            owner = state.get("login", "mirror-bot") if parts[0] == "user" else parts[1]
            if parts[0] == "orgs" and accounts.get(owner) != "Organization":
                return self.reply(404, self.not_found())
            name = body.get("name") or ""
            visibility = body.get("visibility") or ("private" if body.get("private") else "public")
            if not self.add(state, "%s/%s" % (owner, name), body.get("description"), visibility):
                return self.reply(422, {"message": "Repository creation failed.", "errors": [
                    {"resource": "Repository", "code": "custom", "field": "name", "message": "name already exists on this account"}],
                    "documentation_url": "https://docs.github.com/rest/repos/repos#create-an-organization-repository", "status": "422"})
            return self.reply(201, self.represent(state, self.find(state, "%s/%s" % (owner, name))))
        if len(parts) == 3 and parts[0] == "repos":
            return self.repository_at(state, method, parts, body, 422, {"message": "Validation Failed", "errors": [
                {"resource": "Repository", "code": "invalid", "field": "default_branch"}]})
        return self.reply(404, self.not_found())


serve(GitHub)
