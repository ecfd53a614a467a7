"""The Python binding against the sandbox emulator and the real Dovecot/Postfix stack:
open a store, add an account, connect by device code (callback), test, access token and SASL
string, send, fetch, disconnect, and one failing call with code, message and diagnostic."""

import json
import threading
import time

import pytest

import mailconnect
from conftest import DESKTOP_APP, servers, sign_in
from mailconnect import Client, MailconnectError


def test_version_and_abi():
    assert mailconnect.VERSION
    assert mailconnect._lib.mc_abi_version_get() == mailconnect.ABI_VERSION


def test_the_whole_story(emulator, stack, tmp_path):
    with Client({"store": str(tmp_path / "py.db"), "extra_ca_file": stack["ca_pem"]}) as c:
        c.put_registration({"id": "desktop", "provider": "microsoft", "tenant": "organizations", "authority_host": emulator["base_url"], "client_id": DESKTOP_APP})
        c.put_account({"id": "alice", "mailbox": "alice@example.test", "registration": "desktop", "flow": "device_code", "servers": servers(stack)})
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
