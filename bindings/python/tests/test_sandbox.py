"""The Python binding against the sandbox emulator and the real Dovecot/Postfix stack:
open a store, add an account, connect by device code (callback), test, one refresher round,
access token and SASL string (with a Cancel), send, fetch, a built message (umlaut subject, named
recipient, attachments from bytes and from a file) sent over SMTP and fetched back, disconnect (a
cancelled one changes nothing), the Graph token of a disconnected account, the log callback, registrations (get, list, remove), the refresher's options and
states, and failing calls with code (mc_error_code_get), message and diagnostic."""

import email
import email.policy
import json
import threading
import time

import pytest

import mailconnect
from conftest import DESKTOP_APP, servers, sign_in
from mailconnect import Address, Attachment, Cancel, Client, MailconnectError, Message, RefreshReport, SendResult


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
        send_a_built_message(c, tmp_path)

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
        with pytest.raises(MailconnectError) as e:
            c.graph_token("alice")
        assert e.value.status == "MC_E_STATE" and e.value.diagnostic["code"] == "MC-NOT-CONNECTED"

    # The log callback heard the story at info and above, from mailconnect's own modules, without a
    # token; the disconnect logs on the calling thread, so its line is there when the call returned.
    assert lines, "no log line arrived"
    assert all(1 <= level <= mailconnect.LOG_INFO for level, _, _ in lines), lines
    assert any(t.startswith("mailconnect") for _, t, _ in lines), lines
    assert any("disconnected" in m for _, _, m in lines), lines
    assert not any("eyJ" in m for _, _, m in lines), "a token in the log"


PDF = bytes(range(256)) * 3 + "Rechnung für März\r\n".encode("utf-8")


def send_a_built_message(c, tmp_path):
    """A message built by mailconnect (umlaut subject, a named recipient, an attachment from bytes and
    one from a file) goes over the real Postfix and comes back over IMAP as written."""
    sheet = tmp_path / "Übersicht.csv"
    sheet.write_bytes("Posten;Betrag\r\nMiete;1200,00 €\r\n".encode("utf-8"))
    msg = Message(
        to=Address("alice@example.test", "Alice Müller"),
        subject="Rechnung für März",
        text="Guten Tag,\nanbei die Rechnung für März.\n",
        attachments=[
            Attachment.from_bytes(PDF, "Rechnung März.pdf", "application/pdf"),
            Attachment.from_file(sheet, content_type="text/csv"),
        ],
        headers={"X-Invoice-Number": "2026-03-17"},
        importance="high",
    )
    with Cancel() as cancel:
        sent = c.send_message("alice", msg, cancel=cancel)
    assert isinstance(sent, SendResult)
    assert sent.transport == "smtp", sent
    assert sent.message_id.startswith("<") and sent.message_id.endswith("@example.test>"), sent
    assert sent.size > len(PDF) and sent.reply.startswith("2"), sent

    found = None
    for _ in range(40):
        for m in c.fetch("alice", {"protocol": "imap", "unread_only": True, "transport": "smtp_imap"}):
            if sent.message_id.encode() in m["raw"]:
                found = m
        if found:
            break
        time.sleep(0.25)
    else:
        pytest.fail("the built message did not arrive over IMAP")
    parsed = email.message_from_bytes(found["raw"], policy=email.policy.default)
    assert parsed["Subject"] == "Rechnung für März"
    assert b"Rechnung f\xc3\xbcr M\xc3\xa4rz" not in found["raw"].split(b"\r\n\r\n")[0], "the subject is encoded"
    assert parsed["To"].addresses[0].display_name == "Alice Müller"
    assert parsed["X-Invoice-Number"] == "2026-03-17" and parsed["Importance"] == "high"
    assert "Rechnung für März" in parsed.get_body(("plain",)).get_content()
    parts = {p.get_filename(): p for p in parsed.walk() if p.get_filename()}
    assert set(parts) == {"Rechnung März.pdf", "Übersicht.csv"}, list(parts)
    assert parts["Rechnung März.pdf"].get_content_type() == "application/pdf"
    assert parts["Rechnung März.pdf"].get_payload(decode=True) == PDF
    assert parts["Übersicht.csv"].get_payload(decode=True) == sheet.read_bytes()

    # A dict in the C ABI's JSON shape works too.
    again = c.send_message("alice", {"to": ["alice@example.test"], "subject": "dict", "text": "x"})
    assert again.transport == "smtp" and again.message_id != sent.message_id

    # Bad input is refused before anything is sent, naming the field.
    with pytest.raises(MailconnectError) as e:
        c.send_message("alice", Message(subject="nobody", text="x"))
    assert e.value.status == "MC_E_INVALID_ARGUMENT" and e.value.diagnostic["evidence"]["field"] == "to"
    with pytest.raises(MailconnectError) as e:
        c.send_message("alice", Message(to="alice@example.test", attachments=[Attachment.from_file(tmp_path / "missing.pdf")]))
    assert e.value.diagnostic["evidence"]["field"] == "attachments[0].path"
    with pytest.raises(ValueError):
        Attachment().to_json()


def test_a_message_is_serialised_as_the_c_abi_reads_it():
    m = Message(
        to=["a@example.test", Address("b@example.test", "Bernd Groß"), {"name": "C", "address": "c@example.test"}],
        cc="d@example.test",
        from_=Address("me@example.test", "Me"),
        subject="Grüße",
        html="<p>Hallo</p>",
        attachments=[Attachment.from_bytes(b"\x00\xff", "a.bin", content_id="img1"), Attachment.from_file("/tmp/x.pdf")],
        headers=[("X-A", "1")],
        read_receipt=True,
    )
    assert m.to_json() == {
        "from": {"name": "Me", "address": "me@example.test"},
        "to": ["a@example.test", {"name": "Bernd Groß", "address": "b@example.test"}, {"name": "C", "address": "c@example.test"}],
        "cc": ["d@example.test"],
        "subject": "Grüße",
        "html": "<p>Hallo</p>",
        "attachments": [{"content_base64": "AP8=", "file_name": "a.bin", "content_id": "img1"}, {"path": "/tmp/x.pdf"}],
        "headers": [{"name": "X-A", "value": "1"}],
        "read_receipt": True,
    }
    assert Message(to="x@example.test").to_json() == {"to": ["x@example.test"], "subject": ""}


def test_send_message_and_graph_token_without_a_server(tmp_path):
    with Client({"store": str(tmp_path / "m.db")}) as c:
        c.put_registration({"id": "r", "provider": "microsoft", "client_id": DESKTOP_APP})
        c.put_account({"id": "a", "mailbox": "a@example.test", "registration": "r", "transport": "auto"})
        assert c.account("a")["transport"] == "auto"
        with pytest.raises(MailconnectError) as e:
            c.send_message("a", Message(subject="Rechnung für März"))
        assert e.value.status == "MC_E_INVALID_ARGUMENT" and e.value.diagnostic["evidence"]["field"] == "to"
        with pytest.raises(MailconnectError) as e:
            c.send_message("a", {"to": ["a@example.test"], "subjekt": "typo"})
        assert e.value.status == "MC_E_INVALID_ARGUMENT"
        with pytest.raises(MailconnectError) as e:
            c.graph_token("a")
        assert e.value.status == "MC_E_STATE" and e.value.diagnostic["code"] == "MC-NOT-CONNECTED"
        with pytest.raises(TypeError):
            c.send_message("a", "To: a@example.test\r\n\r\nraw")


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
