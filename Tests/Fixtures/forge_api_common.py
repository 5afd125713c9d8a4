"""What the loopback forge APIs (github_api.py, gitlab_api.py, gitea_api.py) share: the state file
the tests write and the server updates, the request log, pagination, rate limits, and git effects.

The state file (JSON), read at every request and written back atomically after a change:
  token          the token the API requires (absent: none)
  login          the user the token belongs to
  accounts       {"acme": "Organization", "alice": "User"} (GitLab: groups and users)
  repositories   [{"path": "acme/widget", "description": ..., "visibility": "private|public|internal",
                   "archived": false, "fork": false, "default_branch": "main"}]
  max_per_page   the largest page the server gives (the documented maximum otherwise)
  clone_base     where clone URLs point: "<clone_base>/<path>.git"
  git_root       where created repositories are made, as bare repositories "<git_root>/<path>.git"
  rate_limit     {"count": N, "retry_after": S, "style": "retry-after|reset"}: the next N listing
                 requests are refused as the forge refuses an exhausted quota
  create_race    true: the next create finds that another creator made the repository first
  link_header    false: GitLab pages say where the next is by X-Next-Page alone

A repository under git_root is also what its API answer says of its last push: GitHub's pushed_at,
Gitea's updated_at and GitLab's newest event follow the newest file under its refs/ (and packed-refs),
as a push moves them. Every GET answer has an ETag, and If-None-Match with it gets 304 (RFC 9110).
"""
import argparse
import datetime
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()


def arguments():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--log", required=True)
    return parser.parse_args()


class State:
    def __init__(self, path):
        self.path = path

    def read(self):
        with open(self.path) as handle:
            return json.load(handle)

    def write(self, data):
        temporary = self.path + ".tmp"
        with open(temporary, "w") as handle:
            json.dump(data, handle, indent=1)
        os.replace(temporary, self.path)


class ForgeHandler(http.server.BaseHTTPRequestHandler):
    """Subclasses set `prefix` (the API root's path) and implement route(method, parts, query, body, state)."""
    protocol_version = "HTTP/1.1"
    prefix = ""
    max_page = 100
    page_parameter = "per_page"

    def log_message(self, *_):
        pass

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_PUT(self):
        self.handle_any("PUT")

    def handle_any(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self.reply(400, {"message": "Problems parsing JSON"})
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query))
        path = split.path
        with open(self.server.log_path, "a") as log:
            log.write("%s %s\n" % (method, self.path))
        with LOCK:
            state = self.server.state.read()
            if not path.startswith(self.prefix):
                return self.reply(404, self.not_found())
            token = state.get("token")
            if token and self.presented_token() != token:
                return self.reply(401, self.unauthorized())
            parts = [urllib.parse.unquote(part) for part in path[len(self.prefix):].strip("/").split("/") if part]
            self.route(method, parts, query, body, state)

    # -- what each forge says differently

    def presented_token(self):
        value = self.headers.get("Authorization") or ""
        for scheme in ("Bearer ", "token "):
            if value.startswith(scheme):
                return value[len(scheme):]
        return self.headers.get("PRIVATE-TOKEN")

    def not_found(self):
        return {"message": "Not Found"}

    def unauthorized(self):
        return {"message": "Bad credentials"}

    # -- helpers

    def reply(self, status, payload, headers=None):
        data = json.dumps(payload).encode()
        if self.command == "GET" and status == 200:
            etag = 'W/"%s"' % hashlib.sha1(data).hexdigest()
            headers = dict(headers or {}, ETag=etag)
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def rate_limited(self, state):
        """Refuses a listing request while the state says the quota is used up; True when it did."""
        limit = state.get("rate_limit") or {}
        if limit.get("count", 0) <= 0:
            return False
        limit["count"] -= 1
        self.server.state.write(state)
        wait = int(limit.get("retry_after", 1))
        if limit.get("style") == "reset":
            # GitHub's primary limit: 403 with the quota's reset time.
            self.reply(403, {"message": "API rate limit exceeded for user."},
                       {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + wait)})
        else:
            self.reply(429, {"message": "Too Many Requests"}, {"Retry-After": str(wait)})
        return True

    def page(self, items, query, state, extra_headers=None):
        """One page of `items`, with the Link header (and whatever the subclass adds)."""
        size = min(int(query.get(self.page_parameter, "30")), int(state.get("max_per_page", self.max_page)))
        number = max(int(query.get("page", "1")), 1)
        chunk = items[(number - 1) * size: number * size]
        last = max((len(items) + size - 1) // size, 1)
        headers = {}
        links = []
        base = "http://%s%s" % (self.headers.get("Host"), urllib.parse.urlsplit(self.path).path)
        def link(page):
            parameters = dict(query)
            parameters["page"] = str(page)
            return "%s?%s" % (base, urllib.parse.urlencode(parameters))
        if number < last:
            links.append('<%s>; rel="next"' % link(number + 1))
            links.append('<%s>; rel="last"' % link(last))
        if number > 1:
            links.append('<%s>; rel="prev"' % link(number - 1))
            links.append('<%s>; rel="first"' % link(1))
        if links and state.get("link_header", True):
            headers["Link"] = ", ".join(links)
        if extra_headers:
            headers.update(extra_headers(number, last, size, len(items)))
        self.reply(200, chunk, headers)

    @staticmethod
    def find(state, path):
        for repository in state.get("repositories", []):
            if repository["path"].lower() == path.lower():
                return repository
        return None

    @staticmethod
    def last_push(state, path):
        """When the served repository's refs last moved (seconds since the epoch), or None."""
        root = state.get("git_root")
        folder = os.path.join(root, path + ".git") if root else None
        if not folder or not os.path.isdir(folder):
            return None
        times = [os.path.getmtime(os.path.join(folder, "packed-refs"))] if os.path.exists(os.path.join(folder, "packed-refs")) else []
        for directory, _, files in os.walk(os.path.join(folder, "refs")):
            times += [os.path.getmtime(os.path.join(directory, name)) for name in files]
        return max(times) if times else None

    @staticmethod
    def timestamp(seconds):
        """ISO 8601 to the second, as the forges write it."""
        if seconds is None:
            return None
        return datetime.datetime.fromtimestamp(int(seconds), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def clone_url(state, path):
        return "%s/%s.git" % (state.get("clone_base", ""), path)

    @staticmethod
    def create_git(state, path):
        root = state.get("git_root")
        if root:
            folder = os.path.join(root, path + ".git")
            os.makedirs(os.path.dirname(folder), exist_ok=True)
            subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", folder], check=True)
            subprocess.run(["git", "--git-dir", folder, "config", "http.receivepack", "true"], check=True)

    @staticmethod
    def set_head(state, path, branch):
        """True when the branch exists in the served repository and HEAD now points at it."""
        root = state.get("git_root")
        if not root:
            return True
        folder = os.path.join(root, path + ".git")
        exists = subprocess.run(["git", "--git-dir", folder, "rev-parse", "--verify", "--quiet", "refs/heads/" + branch],
                                stdout=subprocess.DEVNULL).returncode == 0
        if exists:
            subprocess.run(["git", "--git-dir", folder, "symbolic-ref", "HEAD", "refs/heads/" + branch], check=True)
        return exists

    def repository_at(self, state, method, parts, body, refusal_status, refusal):
        """GET or PATCH /repos/OWNER/NAME, as GitHub and Gitea answer them."""
        repository = self.find(state, "%s/%s" % (parts[1], parts[2]))
        if repository is None:
            return self.reply(404, self.not_found())
        if method == "GET":
            return self.reply(200, self.represent(state, repository))
        if method == "PATCH":
            return self.patch(state, repository, body, refusal_status, refusal)
        return self.reply(404, self.not_found())

    def patch(self, state, repository, body, refusal_status, refusal):
        """A change of the repository's settings; only default_branch is honoured (and must exist)."""
        branch = body.get("default_branch")
        if branch:
            if not self.set_head(state, repository["path"], branch):
                return self.reply(refusal_status, refusal)
            repository["default_branch"] = branch
            self.server.state.write(state)
        return self.reply(200, self.represent(state, repository))

    def add(self, state, path, description, visibility):
        if state.pop("create_race", False) or self.find(state, path) is not None:
            # Another creator was first (or this one is late): the forge says the name is taken.
            if self.find(state, path) is None:
                state.setdefault("repositories", []).append({"path": path, "visibility": visibility, "default_branch": "main"})
                self.create_git(state, path)
            self.server.state.write(state)
            return False
        state.setdefault("repositories", []).append({"path": path, "description": description, "visibility": visibility,
                                                     "archived": False, "fork": False, "default_branch": "main", "created": True})
        self.create_git(state, path)
        self.server.state.write(state)
        return True


def serve(handler):
    args = arguments()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.state = State(args.state)
    server.log_path = args.log
    print("listening on %d" % args.port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
