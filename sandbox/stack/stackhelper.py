#!/usr/bin/env python3
"""Helpers for mailstack.sh (standard library only).

  stackhelper.py ports N                 print N distinct free TCP ports on 127.0.0.1
  stackhelper.py wait STACK_JSON SECS    wait until every port of the stack answers with its greeting
  stackhelper.py procs DIR               print "pid name" of every process that belongs to the stack in DIR
"""
import json
import os
import socket
import ssl
import sys
import time


def free_ports(n):
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
            socks.append(s)
            if p not in ports:
                ports.append(p)
    finally:
        for s in socks:
            s.close()
    return ports


# key -> (implicit TLS?, expected greeting prefix, host key)
CHECKS = {
    "imap_tls": (True, b"* OK", "host"),
    "imap_starttls": (False, b"* OK", "host"),
    "pop3_tls": (True, b"+OK", "host"),
    "pop3_starttls": (False, b"+OK", "host"),
    "smtp_starttls": (False, b"220", "host"),
    "smtp_tls": (True, b"220", "host"),
    "lmtp": (False, b"220", "host"),
    "auth": (False, b"VERSION", "host"),
    "imap_starttls_strict": (False, b"* OK", "strict_host"),
    "pop3_starttls_strict": (False, b"+OK", "strict_host"),
}


def greet(host, port, tls, ca, timeout=2.0):
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        if tls:
            ctx = ssl.create_default_context(cafile=ca)
            s = ctx.wrap_socket(s, server_hostname="localhost")
        s.settimeout(timeout)
        data = b""
        while b"\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        try:
            if tls:
                s.close()
            else:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
        except OSError:
            pass


def wait_ready(path, secs):
    with open(path) as f:
        st = json.load(f)
    deadline = time.monotonic() + secs
    pending = [k for k in CHECKS if k in st]
    last_err = {}
    while pending and time.monotonic() < deadline:
        still = []
        for k in pending:
            tls, prefix, hostkey = CHECKS[k]
            try:
                data = greet(st[hostkey], st[k], tls, st["ca_pem"])
                if data.startswith(prefix):
                    continue
                last_err[k] = "unexpected greeting %r" % data[:80]
            except (OSError, ssl.SSLError) as e:
                last_err[k] = str(e)
            still.append(k)
        pending = still
        if pending:
            time.sleep(0.05)
    if pending:
        for k in pending:
            print("not ready: %s port %s: %s" % (k, st[k], last_err.get(k)), file=sys.stderr)
        return 1
    return 0


def proc_table():
    """pid -> (ppid, name, environ bytes-or-None)"""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d, "rb") as f:
                stat = f.read().decode("utf-8", "replace")
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] in ("Z", "X"):
                continue  # zombies are gone for our purposes (pid 1 may reap them late)
            ppid = int(fields[1])
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    env = f.read()
            except OSError:
                env = None
            table[int(d)] = (ppid, cmd or name, env)
        except (OSError, ValueError):
            continue
    return table


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stack_procs(root):
    """Processes of the stack in root: descendants of the Dovecot and Postfix masters, plus any
    process whose environment names this stack's Postfix config (MAIL_CONFIG) or whose command
    line names this stack's Dovecot config / instance."""
    root = os.path.abspath(root)
    table = proc_table()
    masters = []
    for p in (os.path.join(root, "dovecot/run/master.pid"),
              os.path.join(root, "postfix-queue/pid/master.pid")):
        pid = read_pid(p)
        if pid and pid in table:
            masters.append(pid)
    found = set(masters)
    marker_env = ("MAIL_CONFIG=%s/postfix" % root).encode()
    inst = None
    try:
        with open(os.path.join(root, "dovecot/instance")) as f:
            inst = f.read().strip()
    except OSError:
        pass
    conf = os.path.join(root, "dovecot/dovecot.conf")
    for pid, (ppid, cmd, env) in table.items():
        if env and marker_env + b"\0" in env + b"\0":
            found.add(pid)
        elif conf in cmd or (inst and (cmd.startswith(inst + "/") or ("-%s/" % inst) in cmd.split(" ")[0])):
            # Dovecot titles its processes "dovecot-<instance_name>/<service>"
            found.add(pid)
    changed = True
    while changed:
        changed = False
        for pid, (ppid, cmd, env) in table.items():
            if ppid in found and pid not in found:
                found.add(pid)
                changed = True
    found.discard(os.getpid())
    return [(pid, table[pid][1]) for pid in sorted(found) if pid in table]


def main(argv):
    if len(argv) >= 3 and argv[1] == "ports":
        print(" ".join(str(p) for p in free_ports(int(argv[2]))))
        return 0
    if len(argv) >= 4 and argv[1] == "wait":
        return wait_ready(argv[2], float(argv[3]))
    if len(argv) >= 3 and argv[1] == "procs":
        for pid, cmd in stack_procs(argv[2]):
            print(pid, cmd)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
