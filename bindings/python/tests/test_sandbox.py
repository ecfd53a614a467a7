"""The Python binding against the sandbox emulator and the real Dovecot/Postfix stack:
open a store, add an account, connect by device code (callback), test, one refresher round,
access token and SASL string (with a Cancel), send, fetch, disconnect (a cancelled one changes
nothing), the log callback, registrations (get, list, remove), the refresher's options and
states, and failing calls with code (mc_error_code_get), message and diagnostic."""

import json
import threading
import time

import pytest

import mailconnect
from conftest import DESKTOP_APP, servers, sign_in
from mailconnect import Cancel, Client, MailconnectError, RefreshReport


def test_version_and_abi():
    assert mailconnect.VERSION
    assert mailconnect.ABI_VERSION == 2
    assert mailconnect._lib.mc_abi_version_get() == mailconnect.ABI_VERSION


class LogLines:
    """A log callback that keeps what it receives (it runs on mailconnect threads too)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.lines = []

    def __call__(self, level, target, message):
        with self.lock:
            self.lines.append((level, target, message))

    def snapshot(self):
        with self.lock:
            return list(self.lines)


def test_the_whole_story(emulator, stack, tmp_path):
    log = LogLines()
    mailconnect.set_log_callback(log, "info")
    try:
        the_whole_story(emulator, stack, tmp_path, log)
    finally:
        mailconnect.set_log_callback(None)


def the_whole_story(emulator, stack, tmp_path, log):
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

        # One refresher round: the new token is not due yet.
        r = c.run_refresher()
        assert isinstance(r, RefreshReport)
        assert (r.accounts, r.fresh, r.refreshed, r.failed, r.not_connected) == (1, 1, 0, 0, 0), r

        with Cancel() as cancel:
            assert len(c.access_token("alice", cancel=cancel)) > 1000
            assert c.sasl_xoauth2("alice", cancel).startswith("dXNlcj1hbGljZUBleGFtcGxlLnRlc3QB")
        assert len(c.access_token("alice")) > 1000
        # The ignored protocol argument of ABI 1 is gone.
        with pytest.raises(TypeError):
            c.access_token("alice", 0)

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

        # A disconnect cancelled before it starts changes nothing.
        with Cancel() as cancel:
            cancel.trigger()
            with pytest.raises(MailconnectError) as e:
                c.disconnect("alice", cancel=cancel)
            assert e.value.status == "MC_E_CANCELLED" and e.value.code == -60
        assert c.status("alice")["state"] == "connected"
        with Cancel() as cancel:
            c.disconnect("alice", cancel=cancel)
        assert c.status("alice")["state"] == "not_connected"
        lines = log.snapshot()
        c.disconnect("alice")
        with pytest.raises(MailconnectError) as e:
            c.access_token("alice")
        assert e.value.status == "MC_E_STATE"
        assert e.value.diagnostic["code"] == "MC-NOT-CONNECTED"
        assert e.value.diagnostic["de"]["fix"]

    # The log callback heard the story at info and above, from mailconnect's own modules, without a
    # token; the disconnect logs on the calling thread, so its line is there when the call returned.
    assert lines, "no log line arrived"
    assert all(1 <= level <= mailconnect.LOG_INFO for level, _, _ in lines), lines
    assert any(t.startswith("mailconnect") for _, t, _ in lines), lines
    assert any("disconnected" in m for _, _, m in lines), lines
    assert not any("eyJ" in m for _, _, m in lines), "a token in the log"


def test_the_log_callback_can_be_replaced_and_stopped(tmp_path):
    first, second = LogLines(), LogLines()
    try:
        with Client({"store": str(tmp_path / "log.db")}) as c:
            c.put_registration({"id": "r", "provider": "microsoft", "client_id": DESKTOP_APP})
            c.put_account({"id": "a", "mailbox": "a@example.test", "registration": "r"})
            mailconnect.set_log_callback(first, mailconnect.LOG_DEBUG)
            c.disconnect("a")
            assert any("disconnected" in m for _, _, m in first.snapshot()), first.snapshot()
            mailconnect.set_log_callback(second, "info")
            before = len(first.snapshot())
            c.disconnect("a")
            assert len(first.snapshot()) == before, "the replaced callback still receives lines"
            assert any("disconnected" in m for _, _, m in second.snapshot()), second.snapshot()
            assert all(level <= mailconnect.LOG_INFO for level, _, _ in second.snapshot())
            mailconnect.set_log_callback(None)
            before = len(second.snapshot())
            c.disconnect("a")
            assert len(second.snapshot()) == before, "a stopped callback still receives lines"
            with pytest.raises(ValueError):
                mailconnect.set_log_callback(second, "loud")
            with pytest.raises(MailconnectError) as e:
                mailconnect.set_log_callback(second, 9)
            assert e.value.status == "MC_E_INVALID_ARGUMENT" and "max_level" in e.value.message
    finally:
        mailconnect.set_log_callback(None)


def test_registrations_get_list_remove(tmp_path):
    with Client({"store": str(tmp_path / "reg.db")}) as c:
        c.put_registration({"id": "desktop", "provider": "microsoft", "client_id": DESKTOP_APP})
        c.put_registration({"id": "service", "provider": "microsoft", "tenant": "contoso.onmicrosoft.com",
                            "client_id": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "client_secret": "s3cr3t-value"})
        reg = c.registration("service")
        assert reg["id"] == "service" and reg["tenant"] == "contoso.onmicrosoft.com"
        assert reg["has_client_secret"] is True and "s3cr3t-value" not in json.dumps(reg)
        assert c.registration("desktop")["has_client_secret"] is False
        assert sorted(r["id"] for r in c.registrations()) == ["desktop", "service"]
        assert mailconnect.last_error_code() == 0

        c.put_account({"id": "a", "mailbox": "a@example.test", "registration": "service"})
        with pytest.raises(MailconnectError) as e:
            c.remove_registration("service")
        assert e.value.code == -11 and e.value.status == "MC_E_STATE"
        assert mailconnect.last_error_code() == -11
        c.remove_account("a")
        c.remove_registration("service")
        assert [r["id"] for r in c.registrations()] == ["desktop"]
        with pytest.raises(MailconnectError) as e:
            c.registration("service")
        assert e.value.code == -10 and e.value.status == "MC_E_NOT_FOUND"
        with pytest.raises(MailconnectError) as e:
            c.remove_registration("service")
        assert e.value.code == -10


def test_refresher_options_and_states(tmp_path):
    with Client({"store": str(tmp_path / "ref.db")}) as c:
        c.put_registration({"id": "r", "provider": "microsoft", "client_id": DESKTOP_APP})
        c.put_account({"id": "a", "mailbox": "a@example.test", "registration": "r"})
        assert c.run_refresher({"interval_secs": 5}) == RefreshReport(accounts=1, not_connected=1)
        with pytest.raises(MailconnectError) as e:
            c.run_refresher({"concurrency": 0})
        assert e.value.status == "MC_E_INVALID_ARGUMENT" and e.value.diagnostic["evidence"]["field"] == "concurrency"
        with pytest.raises(MailconnectError) as e:
            c.start_refresher({"no_such_option": 1})
        assert e.value.status == "MC_E_INVALID_ARGUMENT"
        c.start_refresher({"interval_secs": 1})
        with pytest.raises(MailconnectError) as e:
            c.start_refresher()
        assert e.value.status == "MC_E_STATE"
        c.stop_refresher()
        c.stop_refresher()
        c.start_refresher()  # stopped, so it starts again
        with pytest.raises(TypeError):
            c.run_refresher(None, cancel=1)
    # close() ended the running refresher.


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
