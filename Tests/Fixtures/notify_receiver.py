#!/usr/bin/env python3
"""Receives the daemon's notifications: one line per POST in --log, '<signature> <body>'."""
import argparse
import http.server

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--log", required=True)
args = parser.parse_args()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *_):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(args.log, "a") as handle:
            handle.write("%s %s\n" % (self.headers.get("X-Gitmirror-Signature-256", "-"), body.decode()))
        self.send_response(204)
        self.end_headers()


http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
