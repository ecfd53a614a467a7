"""The stored proxy through the Python binding (`Client.set_proxy` / `Client.proxy`) with a real
tinyproxy (Debian's, installed by sandbox/stack/install-deps.sh) that wants Basic authentication:
the proxy reads back as stored without its password (URL and dict forms), an app's sign-in at an
HTTPS identity provider, a user's at the session's emulator and the Test of IMAP, POP3 and SMTP go through it (tinyproxy's own log names
every CONNECT), and `set_proxy(None)` hands the client back to the environment."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import BIN, add_desktop, servers, sign_in
from mailconnect import Client, MailconnectError

# How long a server gets to start or a log line to appear (shared, loaded CI machines).
DEADLINE = 90.0
# The sandbox's tenant and its confidential service app (sandbox/README.md).
TENANT = "6f1c1f3a-3b8e-4a35-9d2c-7a0e5b1c2d3e"
SERVICE_APP = "a1c2e3f4-0b1d-4e2f-8a3b-5c6d7e8f9a0b"
SERVICE_SECRET = "sandbox-service-secret"
PROXY_USER = "mcpy"
# Only unreserved characters: the URL carries it as written.
PROXY_PASSWORD = "Py-pr0xy-9c4e1f"


def wait_for(what, f, deadline=DEADLINE):
    """Poll `f` every 50 ms until it gives a true value; fail naming `what` after `deadline`."""
    end = time.monotonic() + deadline
    while True:
        v = f()
        if v:
            return v
        if time.monotonic() > end:
            pytest.fail("timed out waiting for " + what)
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return True
    except OSError:
        return False


class Tinyproxy:
    """tinyproxy in the foreground on 127.0.0.1 with Basic auth and every CONNECT port allowed (no
    ConnectPort lines); its config and log in a temporary directory."""

    def __init__(self, user: str, password: str):
        self.binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
        assert os.path.exists(self.binary), "tinyproxy is missing: run sh sandbox/stack/install-deps.sh as root"
        self.user, self.password = user, password
        self.dir = Path(tempfile.mkdtemp(prefix="mc-pytinyproxy"))
        self.log_path = self.dir / "tinyproxy.log"
        self.proc = None
        failures = []
        # tinyproxy takes no Port 0: a free port, another one when someone took it meanwhile.
        for _ in range(5):
            self.port = free_port()
            conf = self.dir / "tinyproxy.conf"
            conf.write_text(
                f"Port {self.port}\nListen 127.0.0.1\nTimeout 600\nLogFile \"{self.log_path}\"\nLogLevel Info\n"
                f"MaxClients 100\nAllow 127.0.0.1\nDisableViaHeader Yes\nBasicAuth {user} {password}\n"
            )
            if self.log_path.exists():
                self.log_path.unlink()
            out = open(self.dir / "stderr.log", "wb")
            self.proc = subprocess.Popen([self.binary, "-d", "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            out.close()
            if wait_for("tinyproxy to listen on %d" % self.port, lambda: self.proc.poll() is not None or ("Accepting connections" in self.log() and accepts(self.port))):
                if self.proc.poll() is None:
                    return
            failures.append("port %d: exited %s\n%s%s" % (self.port, self.proc.returncode, self.log(), (self.dir / "stderr.log").read_text()))
        pytest.fail("tinyproxy did not start:\n" + "\n".join(failures))

    def url_with_credentials(self) -> str:
        return "http://%s:%s@127.0.0.1:%d" % (self.user, self.password, self.port)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def connects(self) -> list:
        """The host:port of every CONNECT request tinyproxy read, in order (refused ones too):
        `... Request (file descriptor 5): CONNECT 127.0.0.1:993 HTTP/1.1`."""
        out = []
        for line in self.log().splitlines():
            _, sep, request = line.partition("]: Request (file descriptor ")
            words = request.partition("): ")[2].split()
            if sep and len(words) >= 2 and words[0] == "CONNECT":
                out.append(words[1])
        return out

    def wait_for_connect(self, target: str) -> None:
        wait_for("tinyproxy to log CONNECT %s" % target, lambda: target in self.connects())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def tinyproxy():
    p = Tinyproxy(PROXY_USER, PROXY_PASSWORD)
    yield p
    p.stop()


def openssl(cwd: Path, *args: str) -> None:
    out = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.fixture
def https_emulator(tmp_path):
    """A second emulator of its own that speaks HTTPS (a throw-away CA and a certificate for
    127.0.0.1): its base URL and its CA file. The session's emulator speaks plain HTTP, which goes
    through an HTTP proxy as absolute-form requests, not as CONNECT tunnels."""
    d = tmp_path / "tls"
    d.mkdir()
    openssl(d, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    openssl(d, "req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "2", "-subj", "/CN=mailconnect python proxy test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash", "-out", "ca.pem")
    openssl(d, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.key.ec")
    openssl(d, "pkcs8", "-topk8", "-nocrypt", "-in", "server.key.ec", "-out", "server.key")
    openssl(d, "req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr")
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    openssl(d, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "0x1f2e3d4c5b6a7988",
            "-days", "2", "-sha256", "-extfile", "server.ext", "-out", "server.pem")
    p = subprocess.Popen([str(BIN / "mc-emulator"), "--port", "0", "--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server.key")],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    info = json.loads(p.stdout.readline())
    assert info["base_url"].startswith("https://127.0.0.1:"), info
    yield info["base_url"], d / "ca.pem"
    p.terminate()
    p.wait(10)


def hostport(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    return "%s:%d" % (u.hostname, u.port)


def test_a_stored_proxy_with_basic_auth_carries_sign_in_and_mail(emulator, stack, https_emulator, tinyproxy, tmp_path):
    https_base, https_ca = https_emulator
    # One CA file for the mail stack's and the HTTPS emulator's certificates.
    ca = tmp_path / "cas.pem"
    ca.write_text(Path(stack["ca_pem"]).read_text() + https_ca.read_text())
    # Neither "proxy" nor "no_proxy": the stored setting decides.
    with Client({"store": str(tmp_path / "proxy.db"), "extra_ca_file": str(ca), "http_timeout_secs": 60}) as c:
        assert c.proxy()["source"] == "environment" and c.proxy()["stored"] is None

        c.set_proxy(tinyproxy.url_with_credentials())
        info = c.proxy()
        assert info["source"] == "stored", info
        assert info["stored"]["has_password"] is True and info["stored"]["url"] == "http://%s@127.0.0.1:%d" % (PROXY_USER, tinyproxy.port), info
        assert PROXY_PASSWORD not in repr(info)

        # The dict form (sent as JSON): the same proxy with separate credentials.
        c.set_proxy({"url": "http://127.0.0.1:%d" % tinyproxy.port, "username": PROXY_USER, "password": PROXY_PASSWORD})
        info = c.proxy()
        assert info["source"] == "stored" and info["stored"]["username"] == PROXY_USER and info["stored"]["has_password"] is True, info
        assert PROXY_PASSWORD not in repr(info)

        # The app signs in at the HTTPS identity provider (client credentials, no user): a CONNECT
        # tunnel through tinyproxy.
        c.put_registration({"id": "tls", "provider": "microsoft", "tenant": TENANT, "authority_host": https_base,
                            "client_id": SERVICE_APP, "client_secret": SERVICE_SECRET})
        c.put_account({"id": "app", "mailbox": "sales@example.test", "registration": "tls", "flow": "client_credentials"})
        c.connect("app")
        assert c.status("app")["state"] == "connected"
        tinyproxy.wait_for_connect(hostport(https_base))

        # The session's mail stack checks tokens of the session's (plain HTTP) emulator: alice signs
        # in there (absolute-form requests through tinyproxy), then Test goes to IMAP, POP3 and SMTP.
        add_desktop(c, emulator, "alice", "alice@example.test", servers=servers(stack))
        c.connect("alice", on_device_code=lambda code, uri, message: sign_in(code, uri))
        report = c.test("alice")
        assert report["ok"], report
        paths = {r["protocol"]: r["path"] for r in report["results"]}
        assert paths == {p: "http proxy 127.0.0.1:%d" % tinyproxy.port for p in ("imap", "pop3", "smtp")}, paths
        assert PROXY_PASSWORD not in repr(report)

        # tinyproxy's own log: the tunnels it opened, the requests to the plain-HTTP emulator.
        for name in ("imap_tls", "pop3_tls", "smtp_starttls"):
            tinyproxy.wait_for_connect("127.0.0.1:%d" % stack[name])
        log = tinyproxy.log()
        assert "Request (file descriptor" in log and "POST %s/" % emulator["base_url"] in log, log
        assert PROXY_PASSWORD not in log

        # Removed: back to the environment (the path Test reports is no longer the proxy).
        c.set_proxy(None)
        info = c.proxy()
        assert info["source"] == "environment" and info["stored"] is None, info
        before = len(tinyproxy.connects())
        report = c.test("alice", protocols=["imap"])
        assert report["ok"] and report["results"][0]["path"] != "http proxy 127.0.0.1:%d" % tinyproxy.port, report
        assert len(tinyproxy.connects()) == before


def test_a_bad_proxy_is_refused_and_changes_nothing(tmp_path):
    with Client({"store": str(tmp_path / "bad.db")}) as c:
        c.set_proxy("http://someone:Bad-pr0xy-pw@127.0.0.1:3128")
        with pytest.raises(MailconnectError) as e:
            c.set_proxy("gopher://127.0.0.1:70")
        assert e.value.status == "MC_E_INVALID_ARGUMENT"
        with pytest.raises(TypeError):
            c.set_proxy(3128)
        info = c.proxy()
        assert info["source"] == "stored" and info["stored"]["url"] == "http://someone@127.0.0.1:3128", info
