#!/usr/bin/env python3
"""Checks run by selftest.sh against a running stack (standard library only).

  selftest.py STACK_JSON STUB_LOG REPLIES_OUT

Prints one "PASS name" / "FAIL name: why" line per check, writes the exact server replies seen to
REPLIES_OUT, exits 1 when a check failed.
"""
import base64
import concurrent.futures
import glob
import json
import os
import socket
import ssl
import sys
import time
import uuid

ST = json.load(open(sys.argv[1]))
STUB_LOG = sys.argv[2]
REPLIES_OUT = sys.argv[3]
HOST = ST["host"]
DOM = ST.get("domain", "example.test")
CTX = ssl.create_default_context(cafile=ST["ca_pem"])
CTX.minimum_version = ssl.TLSVersion.TLSv1_2

results = []
replies = []


def check(name, ok, why="", needs_user=False):
    if needs_user and ST.get("passdb") == "oauth2":
        print("SKIP %s (passdb oauth2 sends no login user to the introspection endpoint)" % name, flush=True)
        return
    results.append((name, ok))
    print(("PASS %s" % name) if ok else ("FAIL %s: %s" % (name, why)), flush=True)


def note(case, lines):
    replies.append((case, lines))


class Conn:
    """Line-oriented client; records every line it reads."""

    def __init__(self, port, tls, host=None):
        self.s = socket.create_connection((host or HOST, port), timeout=10)
        if tls:
            self.s = CTX.wrap_socket(self.s, server_hostname="localhost")
        self.buf = b""
        self.seen = []

    def starttls(self):
        self.s = CTX.wrap_socket(self.s, server_hostname="localhost")

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("connection closed; got %r" % self.buf)
            self.buf += d
        ln, self.buf = self.buf.split(b"\r\n", 1)
        ln = ln.decode("utf-8", "replace")
        self.seen.append(ln)
        return ln

    def send(self, text):
        self.s.sendall(text.encode() + b"\r\n")

    def until(self, pred):
        while True:
            ln = self.line()
            if pred(ln):
                return ln

    def smtp_reply(self):
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return lines

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def xoauth2(user, token):
    return base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode()).decode()


def oauthbearer(user, token):
    return base64.b64encode(("n,a=%s,\x01auth=Bearer %s\x01\x01" % (user, token)).encode()).decode()


def decode_challenge(b64):
    try:
        return base64.b64decode(b64).decode()
    except Exception:
        return "(not base64)"


# ------------------------------------------------------------------------------------------- IMAP
def imap_login(user, token, mech="XOAUTH2", port=None, tls=True, starttls=False, host=None):
    """Returns (ok, transcript lines, conn-or-None)."""
    c = Conn(port or ST["imap_tls"], tls, host)
    c.line()
    if starttls:
        c.send("s1 STARTTLS")
        c.until(lambda l: l.startswith("s1 "))
        c.starttls()
    ir = xoauth2(user, token) if mech == "XOAUTH2" else oauthbearer(user, token)
    c.send("a1 AUTHENTICATE %s %s" % (mech, ir))
    start = len(c.seen)
    while True:
        ln = c.line()
        if ln.startswith("+"):
            c.send("" if mech == "XOAUTH2" else "AQ==")
            continue
        if ln.startswith("a1 "):
            break
    tr = c.seen[start:]
    if ln.startswith("a1 OK"):
        return True, tr, c
    c.close()
    return False, tr, None


def imap_cmd(c, tag, cmd):
    c.send("%s %s" % (tag, cmd))
    out = []
    while True:
        ln = c.line()
        out.append(ln)
        if ln.startswith(tag + " "):
            return out


# ------------------------------------------------------------------------------------------- POP3
def pop3_login(user, token, mech="XOAUTH2", port=None, tls=True, starttls=False):
    c = Conn(port or ST["pop3_tls"], tls)
    c.line()
    if starttls:
        c.send("STLS")
        c.line()
        c.starttls()
    start = len(c.seen)
    c.send("AUTH %s" % mech)
    ln = c.line()
    if ln.startswith("+"):
        c.send(xoauth2(user, token) if mech == "XOAUTH2" else oauthbearer(user, token))
        ln = c.line()
        if ln.startswith("+ ") or ln == "+":
            c.send("" if mech == "XOAUTH2" else "AQ==")
            ln = c.line()
    tr = c.seen[start:]
    if ln.startswith("+OK"):
        return True, tr, c
    c.close()
    return False, tr, None


def pop3_multi(c, cmd):
    c.send(cmd)
    first = c.line()
    out = [first]
    if not first.startswith("+OK"):
        return out
    while True:
        ln = c.line()
        if ln == ".":
            return out
        out.append(ln)


# ------------------------------------------------------------------------------------------- SMTP
def smtp_session(port_key, user, token, two_step=True, send_to=None, subject=None):
    """Returns (auth ok?, auth transcript, delivery reply or None)."""
    implicit = port_key == "smtp_tls"
    c = Conn(ST[port_key], implicit)
    c.smtp_reply()
    c.send("EHLO client.test")
    ehlo = c.smtp_reply()
    if not implicit:
        c.send("STARTTLS")
        c.smtp_reply()
        c.starttls()
        c.send("EHLO client.test")
        ehlo = c.smtp_reply()
    start = len(c.seen)
    ir = xoauth2(user, token)
    if two_step:
        c.send("AUTH XOAUTH2")
        r = c.smtp_reply()
        if r[-1].startswith("334"):
            c.send(ir)
            r = c.smtp_reply()
    else:
        c.send("AUTH XOAUTH2 " + ir)
        r = c.smtp_reply()
    if r[-1].startswith("334"):  # error challenge: answer with an empty line
        c.send("")
        r = c.smtp_reply()
    tr = c.seen[start:]
    ok = r[-1].startswith("235")
    delivery = None
    if ok and send_to:
        c.send("MAIL FROM:<%s>" % user)
        r1 = c.smtp_reply()
        c.send("RCPT TO:<%s>" % send_to)
        r2 = c.smtp_reply()
        c.send("DATA")
        r3 = c.smtp_reply()
        if r3[-1].startswith("354"):
            c.send("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@client.test>\r\n\r\nhello from selftest\r\n."
                   % (user, send_to, subject, uuid.uuid4()))
            r4 = c.smtp_reply()
        else:
            r4 = ["(no DATA)"]
        delivery = [r1[-1], r2[-1], r3[-1], r4[-1]]
    c.send("QUIT")
    try:
        c.smtp_reply()
    except (EOFError, OSError):
        pass
    c.close()
    return ok, tr, delivery, ehlo


def main():
    alice = "alice@" + DOM
    bob = "bob@" + DOM
    carol = "carol@" + DOM
    shared = "shared@" + DOM
    long_token = "good-alice." + "x" * 2189  # 2,200 characters
    assert len(long_token) == 2200

    # --- positive logins ------------------------------------------------------------------------
    t = time.monotonic()
    ok, tr, c = imap_login(alice, "good-alice")
    check("imaps xoauth2 good token", ok, tr)
    note("IMAP XOAUTH2 good token (implicit TLS)", tr)
    if c:
        c.close()
    login_ms = (time.monotonic() - t) * 1000

    ok, tr, c = imap_login(alice, "good-alice", port=ST["imap_starttls"], tls=False, starttls=True)
    check("imap starttls xoauth2 good token", ok, tr)
    if c:
        c.close()
    ok, tr, c = imap_login(alice, "good-alice", mech="OAUTHBEARER")
    check("imaps oauthbearer good token", ok, tr)
    note("IMAP OAUTHBEARER good token", tr)
    if c:
        c.close()
    ok, tr, c = pop3_login(alice, "good-alice")
    check("pop3s xoauth2 good token", ok, tr)
    note("POP3 XOAUTH2 good token (two-step AUTH)", tr)
    if c:
        c.close()
    ok, tr, c = pop3_login(alice, "good-alice", port=ST["pop3_starttls"], tls=False, starttls=True)
    check("pop3 stls xoauth2 good token", ok, tr)
    if c:
        c.close()

    # --- SMTP submission with a 2,200-character token on both ports ---------------------------------
    subjects = {}
    for key in ("smtp_starttls", "smtp_tls"):
        subj = "selftest %s %s" % (key, uuid.uuid4().hex[:12])
        subjects[key] = subj
        ok, tr, delivery, ehlo = smtp_session(key, alice, long_token, two_step=True, send_to=alice, subject=subj)
        note("SMTP %s: EHLO after TLS" % key, ehlo)
        note("SMTP %s: two-step AUTH XOAUTH2 with a 2,200-char token" % key,
             [l if len(l) < 100 else l[:40] + "...(%d chars)" % len(l) for l in tr])
        check("smtp %s auth (2,200-char token, two-step)" % key, ok, tr)
        check("smtp %s message accepted" % key,
              bool(delivery) and delivery[-1].startswith("250"), delivery)
        if delivery:
            note("SMTP %s: MAIL/RCPT/DATA/end-of-data" % key, delivery)

    # --- negative cases, run concurrently (each failed login costs >= 0.5 s inside Dovecot) -----
    neg = {}

    def run(name, fn):
        try:
            neg[name] = fn()
        except Exception as e:  # noqa
            neg[name] = ("EXC", repr(e))

    jobs = {
        "imap_bad": lambda: imap_login(alice, "bad-token"),
        "imap_bad_oauthbearer": lambda: imap_login(alice, "bad-token", mech="OAUTHBEARER"),
        "imap_500": lambda: imap_login(alice, "fail500"),
        "imap_wrong_user": lambda: imap_login(alice, "good-bob"),
        "pop3_bad": lambda: pop3_login(alice, "bad-token"),
        "pop3_500": lambda: pop3_login(alice, "fail500"),
        "pop3_denied": lambda: pop3_login(bob, "good-bob"),
        "imap_denied_user_ok": lambda: imap_login(bob, "good-bob"),
        "imap_denied": lambda: imap_login(carol, "good-carol"),
        "smtp_bad": lambda: smtp_session("smtp_starttls", alice, "bad-token"),
        "smtp_500": lambda: smtp_session("smtp_starttls", alice, "fail500"),
        "smtp_denied": lambda: smtp_session("smtp_starttls", carol, "good-carol"),
        "smtp_one_line_long": lambda: smtp_session("smtp_starttls", alice, long_token, two_step=False),
        "imap_shared_delegate": lambda: imap_login(shared, "deleg-bob"),
        "imap_shared_not_delegate": lambda: imap_login(shared, "good-bob"),
    }
    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as ex:
        for f in [ex.submit(run, k, v) for k, v in jobs.items()]:
            f.result()
    neg_ms = (time.monotonic() - t) * 1000

    def closed(r):
        if r[0] == "EXC":
            return r
        if r[2] is not None:
            r[2].close()
        return r

    r = closed(neg["imap_bad"])
    check("imaps xoauth2 bad token refused", r[0] is False and r[1][-1].startswith("a1 NO"), r)
    if r[0] != "EXC":
        tr = r[1] + (["(challenge decodes to %s)" % decode_challenge(r[1][0][2:])] if r[1][0].startswith("+ ") else [])
        note("IMAP XOAUTH2 inactive token", tr)
    r = closed(neg["imap_bad_oauthbearer"])
    check("imaps oauthbearer bad token refused", r[0] is False and r[1][-1].startswith("a1 NO"), r)
    if r[0] != "EXC":
        note("IMAP OAUTHBEARER inactive token",
             r[1] + (["(challenge decodes to %s)" % decode_challenge(r[1][0][2:])] if r[1][0].startswith("+ ") else []))
    r = closed(neg["imap_500"])
    check("imaps introspection HTTP 500 -> temporary failure", r[0] is False and "UNAVAILABLE" in r[1][-1], r)
    if r[0] != "EXC":
        note("IMAP XOAUTH2, introspection endpoint answers HTTP 500", r[1])
    r = closed(neg["imap_wrong_user"])
    check("imaps token of another user refused", r[0] is False, r)
    if r[0] != "EXC":
        note("IMAP XOAUTH2, bob's token with user=alice (username mismatch)", r[1])
    r = closed(neg["pop3_bad"])
    check("pop3s xoauth2 bad token refused", r[0] is False and r[1][-1].startswith("-ERR"), r)
    if r[0] != "EXC":
        note("POP3 XOAUTH2 inactive token", r[1])
    r = closed(neg["pop3_500"])
    check("pop3s introspection HTTP 500 -> temporary failure", r[0] is False and "TEMP" in r[1][-1], r)
    if r[0] != "EXC":
        note("POP3 XOAUTH2, introspection endpoint answers HTTP 500", r[1])
    r = closed(neg["pop3_denied"])
    check("pop3s deny-pop3 user refused on POP3", r[0] is False and r[1][-1].startswith("-ERR"), r)
    if r[0] != "EXC":
        note("POP3 XOAUTH2, good token, user on --deny-pop3", r[1])
    r = closed(neg["imap_denied_user_ok"])
    check("imaps deny-pop3 user accepted on IMAP", r[0] is True, r)
    r = closed(neg["imap_denied"])
    check("imaps deny-imap user refused on IMAP", r[0] is False and r[1][-1].startswith("a1 NO"), r)
    if r[0] != "EXC":
        note("IMAP XOAUTH2, good token, user on --deny-imap", r[1])
    for key, case in (("smtp_bad", "SMTP XOAUTH2 inactive token"),
                      ("smtp_500", "SMTP XOAUTH2, introspection endpoint answers HTTP 500"),
                      ("smtp_denied", "SMTP XOAUTH2, good token, user on --deny-smtp"),
                      ("smtp_one_line_long", "SMTP one-line AUTH XOAUTH2 <initial response> with a 2,200-char token")):
        r = neg[key]
        ok = r[0] is False and r[1][-1].startswith("535")
        check("smtp refused: %s" % case, ok, r)
        if r[0] != "EXC":
            tr = [l if len(l) < 100 else l[:40] + "...(%d chars)" % len(l) for l in r[1]]
            if tr and tr[0].startswith("334 ") and len(tr[0]) > 4:
                tr.append("(challenge decodes to %s)" % decode_challenge(tr[0][4:]))
            note(case, tr)
    r = closed(neg["imap_shared_delegate"])
    check("imaps shared mailbox with delegate token (user=shared) accepted", r[0] is True, r, needs_user=True)
    if r[0] != "EXC":
        note("IMAP XOAUTH2 user=shared@, delegate's token", r[1])
    r = closed(neg["imap_shared_not_delegate"])
    check("imaps shared mailbox with a non-delegate token refused", r[0] is False, r)

    # --- credentials before STARTTLS (127.0.0.2 listeners; 127.0.0.1 counts as secure) ----------
    if "imap_starttls_strict" in ST:
        c = Conn(ST["imap_starttls_strict"], False, ST["strict_host"])
        greet = c.line()
        c.send("a1 AUTHENTICATE XOAUTH2 " + xoauth2(alice, "good-alice"))
        r = c.line()
        c.close()
        check("imap (strict host) AUTHENTICATE before STARTTLS refused", r.startswith("a1 NO"), r)
        note("IMAP on %s without STARTTLS: greeting, then AUTHENTICATE" % ST["strict_host"], [greet, r])
        c = Conn(ST["pop3_starttls_strict"], False, ST["strict_host"])
        greet = c.line()
        c.send("AUTH XOAUTH2")
        r = c.line()
        c.close()
        check("pop3 (strict host) AUTH before STLS refused", r.startswith("-ERR"), r)
        note("POP3 on %s without STLS: AUTH XOAUTH2" % ST["strict_host"], [greet, r])
    c = Conn(ST["smtp_starttls"], False)
    c.smtp_reply()
    c.send("EHLO client.test")
    ehlo = c.smtp_reply()
    c.send("AUTH XOAUTH2")
    r = c.smtp_reply()
    c.close()
    check("smtp AUTH before STARTTLS refused", r[-1].startswith("530"), r)
    note("SMTP submission before STARTTLS: EHLO (no AUTH offered), then AUTH XOAUTH2", ehlo + r)

    # --- delivery: maildir, IMAP, POP3 ------------------------------------------------------------
    md = os.path.join(ST["maildir_root"], DOM, "alice", "Maildir")
    deadline = time.monotonic() + 15
    found = {}
    while time.monotonic() < deadline:
        found = {}
        for p in glob.glob(os.path.join(md, "new", "*")) + glob.glob(os.path.join(md, "cur", "*")):
            try:
                data = open(p, "rb").read().decode("utf-8", "replace")
            except OSError:
                continue
            for k, s in subjects.items():
                if ("Subject: " + s) in data:
                    found[k] = p
        if len(found) == len(subjects):
            break
        time.sleep(0.1)
    for k in subjects:
        check("message via %s arrived in alice's maildir" % k, k in found,
              "not in %s (see %s)" % (md, ST["postfix_log"]))
    if found:
        hdrs = open(list(found.values())[0], "rb").read().decode("utf-8", "replace").split("\n\n")[0]
        note("Delivered message header (Received/Authenticated sender)",
             [l for l in hdrs.splitlines() if l.startswith(("Return-Path", "Received", "Delivered-To", "\t", " "))][:12])

    ok, tr, c = imap_login(alice, "good-alice")
    if c:
        sel = imap_cmd(c, "a2", "SELECT INBOX")
        seen_all = True
        for k, s in subjects.items():
            out = imap_cmd(c, "a3", 'UID SEARCH SUBJECT "%s"' % s.split()[-1])
            hits = [l for l in out if l.startswith("* SEARCH") and len(l.split()) > 2]
            seen_all = seen_all and bool(hits)
        check("messages visible over IMAP", seen_all, sel)
        imap_cmd(c, "a4", "LOGOUT")
        c.close()
    else:
        check("messages visible over IMAP", False, tr)

    ok, tr, c = pop3_login(alice, "good-alice")
    if c:
        stat = pop3_multi(c, "LIST")
        n = len(stat) - 1
        got = set()
        for i in range(1, n + 1):
            top = pop3_multi(c, "TOP %d 0" % i)
            for k, s in subjects.items():
                if ("Subject: " + s) in top:
                    got.add(k)
        check("messages visible over POP3", got == set(subjects), stat)
        c.send("QUIT")
        c.close()
    else:
        check("messages visible over POP3", False, tr)

    # --- what the introspection endpoint saw -------------------------------------------------------
    try:
        log = open(STUB_LOG).read()
    except OSError:
        log = ""
    carried = "user=shared@%s" % DOM in log
    check("introspection request carries the login user (user=...)", carried,
          "stub log has no user=shared@...; passdb=%s" % ST.get("passdb"), needs_user=True)
    note("Introspection requests seen by the stub (first 4)", log.splitlines()[:4])

    with open(REPLIES_OUT, "w") as f:
        f.write("# exact replies observed by selftest.py (passdb=%s)\n" % ST.get("passdb"))
        f.write("# timings: first good IMAPS login %.0f ms; %d negative cases concurrently %.0f ms\n"
                % (login_ms, len(jobs), neg_ms))
        for case, lines in replies:
            f.write("\n## %s\n" % case)
            for l in lines:
                f.write("    %s\n" % l)
    failed = [n for n, ok in results if not ok]
    print("%d checks, %d failed" % (len(results), len(failed)), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
