#!/usr/bin/env python3
"""A CodeCommit-like git endpoint for the tests.

Every request must carry the Basic-auth username and password that
`aws codecommit credential-helper` would compute; the password is checked with
botocore's own SigV4 signer. Accepted requests are served by `git http-backend`
over HTTPS. Each authentication attempt is logged, one line each, to --log.
"""
import argparse
import base64
import datetime
import http.server
import os
import ssl
import subprocess
import sys
import threading

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--root", required=True, help="folder holding bare repositories named after the CodeCommit repository")
parser.add_argument("--cert", required=True)
parser.add_argument("--key", required=True)
parser.add_argument("--region", required=True)
parser.add_argument("--access-key", required=True)
parser.add_argument("--secret-key", required=True)
parser.add_argument("--session-token")
parser.add_argument("--skew", type=int, default=0, help="seconds added to this server's clock")
parser.add_argument("--log", required=True)
parser.add_argument("--moto", help="a moto server URL: repositories created there appear here")
args = parser.parse_args()
log_lock = threading.Lock()


def log(line):
    with log_lock, open(args.log, "a") as handle:
        handle.write(line + "\n")


def expected_password(timestamp, host, path):
    credentials = Credentials(args.access_key, args.secret_key, args.session_token)
    signer = SigV4Auth(credentials, "codecommit", args.region)
    request = AWSRequest()
    request.url = "https://%s%s" % (host, path)
    request.method = "GIT"
    request.context["timestamp"] = timestamp
    canonical = "GIT\n%s\n\nhost:%s\n\nhost\n" % (path, host)
    return "%sZ%s" % (timestamp, signer.signature(signer.string_to_sign(request, canonical), request))


CLIENT = []


# Requests run on threads of their own: two for one new repository at once ran `git init` and
# `git symbolic-ref HEAD` side by side, and the loser's lock error dropped its connection unanswered
# (a client saw "unexpected EOF" in the 120-repository burst). One request at a time makes a folder.
repository_lock = threading.Lock()


def ensure_repository(name):
    """The control plane (moto) decides which repositories exist and where HEAD points; the data plane follows."""
    with repository_lock:
        make_repository(name)


def make_repository(name):
    folder = os.path.join(args.root, name)
    if not args.moto:
        return
    import boto3
    if not CLIENT:
        CLIENT.append(boto3.client("codecommit", region_name=args.region, endpoint_url=args.moto,
                                   aws_access_key_id="testing", aws_secret_access_key="testing"))
    client = CLIENT[0]
    try:
        metadata = client.get_repository(repositoryName=name)["repositoryMetadata"]
    except client.exceptions.RepositoryDoesNotExistException:
        return
    if not os.path.isdir(folder):
        subprocess.run(["git", "init", "--quiet", "--bare", folder], check=True)
    branch = metadata.get("defaultBranch")
    if branch:
        subprocess.run(["git", "--git-dir", folder, "symbolic-ref", "HEAD", "refs/heads/" + branch], check=True)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def deny(self, status, reason):
        log("AUTH %s %s %s" % (status, self.command, reason))
        body = reason.encode()
        self.send_response(status)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="codecommit"')
        self.send_header("Content-Length", str(len(body)))
        # A refused request ends its connection: the next attempt starts afresh.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            # Joined once at the end: adding each chunk to the bytes so far copied them all again.
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def handle_any(self):
        path, _, query = self.path.partition("?")
        parts = path.split("/")
        if len(parts) < 4 or parts[1] != "v1" or parts[2] != "repos":
            return self.deny(404, "not a CodeCommit path")
        repo_path = "/v1/repos/" + parts[3]
        ensure_repository(parts[3])
        request_body = self.body()
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return self.deny(401, "no credentials")
        username, _, password = base64.b64decode(header[6:]).decode().partition(":")
        key, _, token = username.partition("%")
        if key != args.access_key or (token or None) != args.session_token:
            return self.deny(403, "unknown access key or session token")
        timestamp = password.split("Z")[0]
        try:
            signed_at = datetime.datetime.strptime(timestamp, "%Y%m%dT%H%M%S")
        except ValueError:
            return self.deny(403, "malformed signature")
        now = datetime.datetime.utcnow() + datetime.timedelta(seconds=args.skew)
        if abs((now - signed_at).total_seconds()) > 15 * 60:
            return self.deny(403, "signature expired")
        host = self.headers.get("Host", "").split(":")[0]
        if password != expected_password(timestamp, host, repo_path):
            return self.deny(403, "signature does not match")
        log("AUTH 200 %s ok" % self.command)
        environment = dict(os.environ, GIT_PROJECT_ROOT=args.root, GIT_HTTP_EXPORT_ALL="1",
                           PATH_INFO="/" + "/".join(parts[3:]), QUERY_STRING=query, REQUEST_METHOD=self.command,
                           CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(request_body)),
                           REMOTE_USER=key, REMOTE_ADDR="127.0.0.1", GIT_CONFIG_NOSYSTEM="1")
        result = subprocess.run(["git", "http-backend"], input=request_body, env=environment, capture_output=True)
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = result.stdout.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode(errors="replace").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = handle_any
    do_POST = handle_any


class Server(http.server.ThreadingHTTPServer):
    # A burst of 120 repositories' listings and pushes (8 jobs) overflowed the default backlog of 5, and
    # the TLS handshakes ran one after another on the accepting thread: a client could see its
    # connection closed. The backlog is deep, and each handshake runs on its request's own thread.
    request_queue_size = 128


server = Server(("127.0.0.1", args.port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(args.cert, args.key)
server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
print("listening", flush=True)
server.serve_forever()
