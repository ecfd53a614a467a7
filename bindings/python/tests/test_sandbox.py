"""The Python binding against the sandbox emulator and the real Dovecot/Postfix stack:
open a store, add an account, connect by device code (callback), test, access token and SASL
string, send, fetch, disconnect, and one failing call with code, message and diagnostic."""

import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import mailconnect
from mailconnect import Client, MailconnectError

ROOT = Path(__file__).resolve().parents[3]
BIN = ROOT / "target" / "debug"
DESKTOP_APP = "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90"


@pytest.fixture(scope="module")
def emulator():
    p = subprocess.Popen([str(BIN / "mc-emulator"), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    info = json.loads(p.stdout.readline())
    base = info["base_url"]
    # Poll the device code every second instead of five.
    settings = json.loads(urllib.request.urlopen(base + "/_sandbox/token-settings").read())
    settings["device_poll_interval_secs"] = 1
    req = urllib.request.Request(base + "/_sandbox/token-settings", data=json.dumps(settings).encode(), headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req).read()
    yield info
    p.terminate()
    p.wait(10)


@pytest.fixture(scope="module")
def stack(emulator):
    d = tempfile.mkdtemp(prefix="mcpystack")
    script = ROOT / "sandbox" / "stack" / "mailstack.sh"
    subprocess.run(["bash", str(script), "up", d, "--introspect-url", emulator["introspection_url"]], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info = json.loads(Path(d, "stack.json").read_text())
    yield info
    subprocess.run(["bash", str(script), "down", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sign_in(code, uri, user="alice@example.test"):
    """Play the user: the sandbox's scripted browser completes the device code."""
    threading.Thread(
        target=subprocess.run,
        args=([str(BIN / "mailconnect"), "sandbox", "sign-in", "--user", user, "--password", user.split("@")[0] + "-password", "--device-code", code, "--verification-uri", uri],),
        kwargs={"check": True, "stdout": subprocess.DEVNULL},
        daemon=True,
    ).start()


def test_version_and_abi():
    assert mailconnect.VERSION
    assert mailconnect._lib.mc_abi_version() == mailconnect.ABI_VERSION


def test_the_whole_story(emulator, stack, tmp_path):
    servers = {
        "imap": {"host": "127.0.0.1", "port": stack["imap_tls"], "security": "tls"},
        "pop3": {"host": "127.0.0.1", "port": stack["pop3_tls"], "security": "tls"},
        "smtp": {"host": "127.0.0.1", "port": stack["smtp_starttls"], "security": "starttls"},
    }
    with Client({"store": str(tmp_path / "py.db"), "extra_ca_file": stack["ca_pem"]}) as c:
        c.put_registration({"id": "desktop", "provider": "microsoft", "tenant": "organizations", "authority_host": emulator["base_url"], "client_id": DESKTOP_APP})
        c.put_account({"id": "alice", "mailbox": "alice@example.test", "registration": "desktop", "flow": "device_code", "servers": servers})
        shown, stages = [], []

        def on_code(code, uri, message):
            shown.append(message)
            sign_in(code, uri)

        c.connect("alice", on_device_code=on_code, on_progress=stages.append)
        assert shown and stages[-1] == "connected"
        assert c.status("alice")["state"] == "connected"

        report = c.test("alice")
        assert report["ok"], json.dumps(report, indent=1)
        assert {r["protocol"] for r in report["results"]} == {"imap", "pop3", "smtp"}

        assert len(c.access_token("alice")) > 1000
        assert c.sasl_xoauth2("alice").startswith("dXNlcj1hbGljZUBleGFtcGxlLnRlc3QB")

        c.send("alice", b"From: alice@example.test\r\nTo: alice@example.test\r\nSubject: from python\r\n\r\nHello.\r\n")
        for _ in range(40):
            msgs = c.fetch("alice", {"protocol": "imap", "headers_only": True})
            if any(b"from python" in m["raw"] for m in msgs):
                break
            time.sleep(0.25)
        else:
            pytest.fail("the message did not arrive over IMAP")
        assert any(b"from python" in m["raw"] for m in c.fetch("alice", {"protocol": "pop3"}))
        assert any(f["name"] == "INBOX" for f in c.folders("alice"))

        c.disconnect("alice")
        c.disconnect("alice")
        with pytest.raises(MailconnectError) as e:
            c.access_token("alice")
        assert e.value.status == "MC_E_STATE"
        assert e.value.diagnostic["code"] == "MC-NOT-CONNECTED"
        assert e.value.diagnostic["de"]["fix"]


def test_a_failing_call_carries_code_message_and_diagnostic(tmp_path):
    with Client({"store": str(tmp_path / "e.db")}) as c:
        with pytest.raises(MailconnectError) as e:
            c.put_account({"id": "x", "mailbox": "not-an-address", "registration": "r"})
        assert e.value.code == -1 and e.value.status == "MC_E_INVALID_ARGUMENT"
        assert "mailbox" in e.value.message
        assert e.value.diagnostic["evidence"]["field"] == "mailbox"
    with pytest.raises(MailconnectError) as e:
        Client({"store": str(tmp_path / "f.db"), "language": "fr"})
    assert e.value.diagnostic["evidence"]["field"] == "language"


def test_cancel_from_another_thread(emulator, tmp_path):
    with Client({"store": str(tmp_path / "c.db")}) as c, mailconnect.Cancel() as cancel:
        c.put_registration({"id": "d", "provider": "microsoft", "authority_host": emulator["base_url"], "client_id": DESKTOP_APP})
        c.put_account({"id": "a", "mailbox": "alice@example.test", "registration": "d", "flow": "device_code"})
        t = threading.Timer(0.5, cancel.trigger)
        t.start()
        with pytest.raises(MailconnectError) as e:
            c.connect("a", on_device_code=lambda *a: None, cancel=cancel)
        assert e.value.status == "MC_E_CANCELLED"
