#!/usr/bin/env python3
"""Credential endpoints for the tests: ECS-style container credentials (checking the
Authorization header) and EC2 instance metadata with IMDSv2 session tokens.
Every request is logged to --log as "METHOD PATH STATUS"."""
import argparse
import datetime
import http.server
import json

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--mode", choices=["container", "imds"], required=True)
parser.add_argument("--authorization", default="")
parser.add_argument("--access-key", required=True)
parser.add_argument("--secret-key", required=True)
parser.add_argument("--token", required=True)
parser.add_argument("--log", required=True)
args = parser.parse_args()
IMDS_TOKEN = "imds-session-token-1234"
ROLE = "mirror-instance-role"


def credentials():
    expiration = (datetime.datetime.utcnow() + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": args.access_key, "SecretAccessKey": args.secret_key,
            "Token": args.token, "Expiration": expiration}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *_):
        pass

    def reply(self, status, body):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        with open(args.log, "a") as handle:
            handle.write("%s %s %d\n" % (self.command, self.path, status))
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        if args.mode == "imds" and self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(200, IMDS_TOKEN)
        return self.reply(404, "not found")

    def do_GET(self):
        if args.mode == "container":
            if self.headers.get("Authorization", "") != args.authorization:
                return self.reply(401, "bad authorization")
            return self.reply(200, credentials())
        if self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
            return self.reply(401, "IMDSv2 token required")
        if self.path == "/latest/meta-data/iam/security-credentials/":
            return self.reply(200, ROLE)
        if self.path == "/latest/meta-data/iam/security-credentials/" + ROLE:
            return self.reply(200, credentials())
        return self.reply(404, "not found")


http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
