#!/usr/bin/env python3
"""A tiny RFC 7662 introspection stub for selftest.sh (loopback only, standard library only).

  introspect_stub.py PORTFILE LOGFILE

Listens on 127.0.0.1 (port chosen by the OS, written to PORTFILE) and answers GET or POST
/introspect with HTTP 200 always, except the token "fail500":
  token "good-<name>" or "good-<name>.<anything>"  -> {"active":true,"username":"<name>@example.test"}
  token "deleg-<name>" (a delegate's token)         -> username = the requested `user` when it is
                                                       shared@example.test, else <name>@example.test
  token "fail500"                                   -> HTTP 500 (a broken endpoint)
  anything else                                     -> {"active":false}
Every request line, the user/service parameters and the body (token shortened) go to LOGFILE.
"""
import http.server
import json
import sys
import urllib.parse

DOMAIN = "example.test"


def answer(token, user):
    if token == "fail500":
        return 500, {"error": "server_error"}
    if token.startswith("good-"):
        name = token[5:].split(".", 1)[0]
        return 200, {"active": True, "username": "%s@%s" % (name, DOMAIN)}
    if token.startswith("deleg-"):
        name = token[6:].split(".", 1)[0]
        if user and user.lower() == "shared@" + DOMAIN:
            return 200, {"active": True, "username": user.lower()}
        return 200, {"active": True, "username": "%s@%s" % (name, DOMAIN)}
    return 200, {"active": False}


def short(s):
    return s if len(s) <= 60 else "%s...(%d chars)" % (s[:40], len(s))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and answers "Expect: 100-continue"

    def handle_one(self, body):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        f = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        get = lambda k: (f.get(k) or q.get(k) or [""])[0]
        token, user, service = get("token"), get("user"), get("service")
        status, obj = answer(token, user)
        line = self.requestline
        if "token=" in line:
            line = line.replace(urllib.parse.quote(token, safe=""), short(token)).replace(token, short(token))
        log = "%s | token=%s user=%s service=%s | body=%s | -> %d %s\n" % (
            line, short(token), user or "-", service or "-",
            short(body.decode("utf-8", "replace")) if body else "-", status, json.dumps(obj))
        with open(self.server.logfile, "a") as lf:
            lf.write(log)
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.handle_one(b"")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.handle_one(self.rfile.read(n) if n else b"")

    def log_message(self, *args):
        pass


def main():
    portfile, logfile = sys.argv[1], sys.argv[2]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.logfile = logfile
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.replace(portfile + ".tmp", portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
