"""Shared fixtures: one identity-platform emulator and one real Dovecot/Postfix stack per session,
the scripted user (`mailconnect sandbox sign-in`), and the emulator's token settings."""

import contextlib
import json
import subprocess
import tempfile
import threading
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = ROOT / "target" / "debug"
DESKTOP_APP = "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90"
# A fixed AES-256 key for host-store clients (32 bytes, base64); a product takes it from its secret store.
TEST_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def _control(base: str, path: str, body=None):
    req = urllib.request.Request(
        base + "/_sandbox" + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    return json.loads(urllib.request.urlopen(req).read())


@pytest.fixture(scope="session")
def emulator():
    p = subprocess.Popen([str(BIN / "mc-emulator"), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    info = json.loads(p.stdout.readline())
    base = info["base_url"]
    # Poll the device code every second instead of five.
    settings = _control(base, "/token-settings")
    settings["device_poll_interval_secs"] = 1
    _control(base, "/token-settings", settings)
    yield info
    p.terminate()
    p.wait(10)


@contextlib.contextmanager
def token_lifetime(emulator, seconds: int):
    """Access tokens of `seconds` while inside (mailconnect refreshes after half of that)."""
    base = emulator["base_url"]
    before = _control(base, "/token-settings")
    _control(base, "/token-settings", dict(before, access_token_lifetime_secs=seconds))
    try:
        yield
    finally:
        _control(base, "/token-settings", before)


def revoke_refresh_tokens(emulator, user: str) -> None:
    """The user's refresh tokens stop working (an admin revoked the sessions)."""
    _control(emulator["base_url"], "/users/%s/revoke" % user, {})


def refreshes_total(emulator) -> int:
    """Refresh-token requests the emulator has answered so far."""
    return int(_control(emulator["base_url"], "/stats").get("token_requests", {}).get("refresh_token", 0))


@pytest.fixture(scope="session")
def stack(emulator):
    d = tempfile.mkdtemp(prefix="mcpystack")
    script = ROOT / "sandbox" / "stack" / "mailstack.sh"
    subprocess.run(["bash", str(script), "up", d, "--introspect-url", emulator["introspection_url"]], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info = json.loads(Path(d, "stack.json").read_text())
    yield info
    subprocess.run(["bash", str(script), "down", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def servers(stack) -> dict:
    return {
        "imap": {"host": "127.0.0.1", "port": stack["imap_tls"], "security": "tls"},
        "pop3": {"host": "127.0.0.1", "port": stack["pop3_tls"], "security": "tls"},
        "smtp": {"host": "127.0.0.1", "port": stack["smtp_starttls"], "security": "starttls"},
    }


def _sign_in_args(user: str) -> list:
    return [str(BIN / "mailconnect"), "sandbox", "sign-in", "--user", user, "--password", user.split("@")[0] + "-password"]


def sign_in(code, uri, user="alice@example.test"):
    """Play the user in the background: the sandbox's scripted browser completes the device code."""
    threading.Thread(
        target=subprocess.run,
        args=(_sign_in_args(user) + ["--device-code", code, "--verification-uri", uri],),
        kwargs={"check": True, "stdout": subprocess.DEVNULL},
        daemon=True,
    ).start()


def sign_in_at(url: str, user: str) -> subprocess.Popen:
    """Play the user on an authorize URL (the scripted browser follows the forms and delivers the
    redirect to mailconnect's loopback listener)."""
    return subprocess.Popen(_sign_in_args(user) + ["--url", url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def add_desktop(client, emulator, account_id: str, mailbox: str, flow: str = "device_code", **extra) -> None:
    client.put_registration({"id": "desktop", "provider": "microsoft", "tenant": "organizations", "authority_host": emulator["base_url"], "client_id": DESKTOP_APP})
    client.put_account(dict({"id": account_id, "mailbox": mailbox, "registration": "desktop", "flow": flow}, **extra))


def capture_redirect(url: str, user: str) -> str:
    """Play the user in an embedded web view: sign in at `url` and return the final redirect URL the
    view would intercept (e.g. the nativeclient URL with code and state), without loading it."""
    out = subprocess.run(_sign_in_args(user) + ["--url", url, "--capture-redirect"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [l for l in out.stdout.splitlines() if l.startswith("REDIRECT ")]
    assert lines, out.stdout
    return lines[-1][len("REDIRECT "):]
