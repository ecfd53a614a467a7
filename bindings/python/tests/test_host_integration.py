"""Host integration points through the Python binding, against the sandbox emulator and the real
Dovecot/Postfix stack: the host drives the sign-in (device code with poll, loopback with wait,
abort), pulls events (iterator and blocking next_event, a listener thread ended by close; a refresh,
then a needs-re-authorization after the sessions are revoked, in order), runs the refresher (one
round on its own timer that refreshes, the background refresher that keeps a token fresh without a
call, a round that counts a revoked account), and keeps mailconnect's blobs in its own SQLite table
(connect -> Test -> refresher round -> disconnect; a truncating host gets MC-TOKEN-TRUNCATED; a
failing host callback gets MC_E_STORE, never a crash)."""

import json
import sqlite3
import threading
import time

import pytest

from conftest import TEST_KEY, add_desktop, capture_redirect, refreshes_total, revoke_refresh_tokens, servers, sign_in, sign_in_at, token_lifetime
from mailconnect import Authorization, Cancel, Client, Event, MailconnectError, PollResult, RefreshReport, SqliteStore


def poll_until_connected(c: Client, a: Authorization, limit: float = 30.0) -> PollResult:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        r = c.poll_authorization(a)
        if r.connected:
            return r
        assert r.retry_after > 0
        time.sleep(r.retry_after)
    pytest.fail("the device-code sign-in never connected")


def describe(events) -> list:
    """connect_progress:STAGE, state_changed:FROM->TO, or the type, in arrival order (logs left out)."""
    out = []
    for e in events:
        if e.type == "connect_progress":
            out.append("progress:" + e["stage"])
        elif e.type == "state_changed":
            out.append("state:%s->%s" % (e["from"], e["to"]))
        elif e.type != "log":
            out.append(e.type)
    return out


def test_device_flow_driven_by_the_host_and_events_in_order(emulator, tmp_path):
    with token_lifetime(emulator, 4), Client({"store": str(tmp_path / "dev.db"), "no_proxy": True}) as c:
        add_desktop(c, emulator, "carol", "carol@example.test")
        c.configure_events(capacity=256, log_level="info")
        with pytest.raises(MailconnectError) as e:
            c.configure_events(log_level="loud")
        assert e.value.status == "MC_E_INVALID_ARGUMENT"

        # A listener thread, as a host would run one: it ends when the client is closed.
        heard: list = []
        listener = threading.Thread(target=lambda: heard.extend(c.events()), daemon=True)

        with Cancel() as cancel:
            a = c.begin_authorization("carol", cancel=cancel)
        assert isinstance(a, Authorization)
        assert a.flow == "device_code" and a.user_code and a.verification_uri
        assert a.user_code in a.message and a.expires_in_secs > 60 and a.interval_secs >= 1
        assert a.url is None
        first = c.poll_authorization(a)
        assert not first.connected and first.retry_after > 0
        sign_in(a.user_code, a.verification_uri, "carol@example.test")
        done = poll_until_connected(c, a)
        assert done.status["state"] == "connected"
        assert done.status["identity"]["username"] == "carol@example.test"
        # The handle is used up.
        with pytest.raises(MailconnectError) as e:
            c.poll_authorization(a)
        assert e.value.status == "MC_E_STATE" and e.value.diagnostic["code"] == "MC-SIGN-IN-NOT-PENDING"

        # A refresh: the 4-second token is refreshed after half its lifetime.
        refreshed_before = refreshes_total(emulator)
        time.sleep(2.6)
        assert len(c.access_token("carol")) > 1000
        assert refreshes_total(emulator) > refreshed_before
        # The iterator: everything so far, until one second passes without an event.
        events = list(c.events(timeout=1.0))
        assert all(isinstance(e, Event) for e in events)
        kinds = describe(events)
        for k in ("progress:starting", "progress:connected", "state:not_connected->connected", "token_refreshed"):
            assert k in kinds, (k, kinds)
        assert kinds.index("progress:starting") < kinds.index("progress:connected")
        assert kinds.index("progress:connected") < kinds.index("state:not_connected->connected")
        assert kinds.index("state:not_connected->connected") < kinds.index("token_refreshed")
        seqs = [e.seq for e in events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert all(e.account_id == "carol" for e in events if e.type != "log")
        refreshed = next(e for e in events if e.type == "token_refreshed")
        assert refreshed["expires_at"] and refreshed.time
        assert any(e.type == "log" for e in events), "info log records arrive as events"
        assert "eyJ" not in json.dumps([e.data for e in events]), "no token in any event"

        # The sessions are revoked: the next refresh fails, and the events say so, in order.
        revoke_refresh_tokens(emulator, "carol@example.test")
        time.sleep(2.6)
        with pytest.raises(MailconnectError) as e:
            c.access_token("carol")
        assert e.value.status == "MC_E_REAUTHORIZATION_REQUIRED"
        later = list(c.events(timeout=1.0))
        kinds = describe(later)
        assert "needs_reauthorization" in kinds and "state:connected->needs_reauthorization" in kinds, kinds
        assert kinds.index("needs_reauthorization") < kinds.index("state:connected->needs_reauthorization")
        assert min(e.seq for e in later) > max(e.seq for e in events)
        reauth = next(e for e in later if e.type == "needs_reauthorization")
        assert reauth.account_id == "carol" and reauth["reason"] == "refresh_token_revoked"
        assert reauth["diagnostic"]["code"] == "MC-REFRESH-TOKEN-REVOKED" and reauth["diagnostic"]["de"]["fix"]
        # A refresher round counts the account and leaves it alone.
        before = refreshes_total(emulator)
        r = c.run_refresher()
        assert (r.accounts, r.needs_reauthorization, r.refreshed, r.failed) == (1, 1, 0, 0), r
        assert refreshes_total(emulator) == before

        # Blocking next_event: nothing comes, so None after the timeout; then one event wakes it.
        t0 = time.monotonic()
        assert c.next_event(timeout=0.3) is None
        assert 0.25 <= time.monotonic() - t0 < 2.0
        assert c.next_event(timeout=0) is None
        listener.start()
        c.disconnect("carol")
        time.sleep(0.5)
    # close() ended the listener's endless iteration promptly.
    listener.join(3)
    assert not listener.is_alive()
    assert "state:needs_reauthorization->not_connected" in describe(heard), describe(heard)


def test_loopback_flow_driven_by_the_host_and_abort(emulator, tmp_path):
    with Client({"store": str(tmp_path / "loop.db"), "no_proxy": True}) as c:
        add_desktop(c, emulator, "bob", "bob@example.test", flow="browser")
        # Abort: the user closed the window; the handle is refused afterwards.
        gone = c.begin_authorization("bob")
        c.abort_authorization(gone)
        with pytest.raises(MailconnectError) as e:
            c.wait_authorization(gone)
        assert e.value.status == "MC_E_STATE" and "aborted" in e.value.message

        a = c.begin_authorization("bob")
        assert a.flow == "browser" and a.loopback is True
        assert a.redirect_uri.startswith("http://localhost:") and "code_challenge_method=S256" in a.url
        user = sign_in_at(a.url, "bob@example.test")
        status = c.wait_authorization(a)
        assert user.wait(30) == 0, user.stdout.read()
        assert status["state"] == "connected" and status["identity"]["username"] == "bob@example.test"

        # An embedded view's redirect URI: nobody listens, so waiting is refused with the reason,
        # and a URL of another sign-in is refused while the sign-in stays pending.
        nc = c.begin_authorization("bob", redirect_uri="https://login.microsoftonline.com/common/oauth2/nativeclient")
        assert nc.loopback is False and nc.redirect_uri.endswith("/nativeclient")
        with pytest.raises(MailconnectError) as e:
            c.wait_authorization(nc)
        assert e.value.status == "MC_E_STATE" and e.value.diagnostic["code"] == "MC-SIGN-IN-WRONG-RESPONSE"
        with pytest.raises(MailconnectError) as e:
            c.complete_authorization(nc, "https://login.microsoftonline.com/common/oauth2/nativeclient?code=abc&state=older")
        assert e.value.diagnostic["code"] == "MC-SIGN-IN-STATE-MISMATCH", e.value
        # The embedded view signs in and the host hands over the URL it intercepted.
        captured = capture_redirect(nc.url, "bob@example.test")
        assert captured.startswith(nc.redirect_uri + "?") and "code=" in captured
        status = c.complete_authorization(nc, captured)
        assert status["state"] == "connected" and status["identity"]["username"] == "bob@example.test"
        with pytest.raises(MailconnectError) as e:
            c.complete_authorization(nc, captured)
        assert e.value.diagnostic["code"] == "MC-SIGN-IN-NOT-PENDING" and "completed" in e.value.message


def open_host_client(store, **extra) -> Client:
    return Client(dict({"key": {"base64": TEST_KEY}, "http_timeout_secs": 5, "no_proxy": True}, **extra), store=store)


def connect_by_device_code(c: Client, account_id: str, user: str) -> dict:
    a = c.begin_authorization(account_id, flow="device")
    sign_in(a.user_code, a.verification_uri, user)
    return c.wait_authorization(a)


def test_host_store_in_sqlite_connect_test_refresh_disconnect(emulator, stack, tmp_path):
    db = tmp_path / "vendor.db"
    store = SqliteStore(db, table="vendor_mail_tokens")
    with token_lifetime(emulator, 4):
        with open_host_client(store, extra_ca_file=stack["ca_pem"]) as c:
            add_desktop(c, emulator, "alice", "alice@example.test", servers=servers(stack))
            status = connect_by_device_code(c, "alice", "alice@example.test")
            assert status["state"] == "connected"

            # Only opaque blobs in the host's table: not a token, not even the mailbox.
            with sqlite3.connect(db) as raw:
                rows = raw.execute("SELECT kind, id, version, blob FROM vendor_mail_tokens").fetchall()
            assert {"tokens", "account", "registration"} <= {r[0] for r in rows}
            for kind, _id, version, blob in rows:
                assert version > 0 and bytes(blob).startswith(b"MCB1"), kind
                assert b"eyJ" not in bytes(blob) and b"alice" not in bytes(blob), kind

            report = c.test("alice")
            assert report["ok"], json.dumps(report, indent=1)

            # A refresher round (the host's own timer) refreshes through the host's table once half
            # the 4-second lifetime has passed.
            before = refreshes_total(emulator)
            time.sleep(2.6)
            r = c.run_refresher({"jitter_secs": 0})
            assert isinstance(r, RefreshReport)
            assert (r.accounts, r.refreshed, r.failed) == (1, 1, 0), r
            assert refreshes_total(emulator) == before + 1
            assert any(e.type == "token_refreshed" for e in c.events(timeout=1.0))
            assert len(c.access_token("alice")) > 1000

            # A second client on the same table (the vendor's mail service) sees the refreshed account.
            with open_host_client(SqliteStore(db, table="vendor_mail_tokens")) as other:
                st = other.status("alice")
                assert st["state"] == "connected" and st.get("refreshed_at")

            c.disconnect("alice")
            assert c.status("alice")["state"] == "not_connected"
    assert store.load("tokens", "alice") is None
    assert [r[0] for r in store.list("account")] == ["alice"]
    store.close()


def test_the_background_refresher_keeps_the_token_fresh(emulator, tmp_path):
    with token_lifetime(emulator, 4), Client({"store": str(tmp_path / "bg.db"), "no_proxy": True}) as c:
        add_desktop(c, emulator, "dave", "bob@example.test")
        assert connect_by_device_code(c, "dave", "bob@example.test")["state"] == "connected"
        list(c.events(timeout=0))
        before = refreshes_total(emulator)
        c.start_refresher({"interval_secs": 1, "jitter_secs": 0})
        # No call asks for a token: the refresher refreshes on its own once half the lifetime passed.
        deadline = time.monotonic() + 30
        refreshed = None
        while refreshed is None and time.monotonic() < deadline:
            ev = c.next_event(timeout=1.0)
            if ev is not None and ev.type == "token_refreshed":
                refreshed = ev
        assert refreshed is not None, "the background refresher did not refresh within 30 s"
        assert refreshed.account_id == "dave" and refreshes_total(emulator) > before
        c.stop_refresher()
        c.start_refresher()  # it had stopped, so it starts again
        c.stop_refresher()


class TruncatingStore(SqliteStore):
    """A host whose column keeps only 1024 bytes of a blob."""

    def compare_and_swap(self, kind, id, data, expected_version, new_version):
        if kind == "tokens":
            data = data[:1024]
        return super().compare_and_swap(kind, id, data, expected_version, new_version)


def test_a_truncating_host_gets_token_truncated(emulator, tmp_path):
    with open_host_client(TruncatingStore(tmp_path / "short.db")) as c:
        add_desktop(c, emulator, "bob", "bob@example.test")
        with pytest.raises(MailconnectError) as e:
            # The write "succeeds" at the host; the next read finds the blob cut short.
            connect_by_device_code(c, "bob", "bob@example.test")
            c.access_token("bob")
        assert e.value.status == "MC_E_STORE", e.value
        assert e.value.diagnostic["code"] == "MC-TOKEN-TRUNCATED", e.value.diagnostic
        assert "1024 of" in e.value.message


class BrokenStore(SqliteStore):
    """A host whose database fails on reads of accounts."""

    def __init__(self, path):
        super().__init__(path)
        self.errors: list = []
        self.failing = False

    def load(self, kind, id):
        if self.failing and kind == "account":
            raise sqlite3.OperationalError("database is locked")
        return super().load(kind, id)

    def on_error(self, operation, kind, id, exc):
        self.errors.append((operation, kind, id, type(exc).__name__))


def test_an_exception_in_a_store_callback_becomes_mc_e_store(emulator, tmp_path):
    store = BrokenStore(tmp_path / "broken.db")
    with open_host_client(store) as c:
        add_desktop(c, emulator, "alice", "alice@example.test")
        store.failing = True
        with pytest.raises(MailconnectError) as e:
            c.status("alice")
        assert e.value.status == "MC_E_STORE"
        assert "returned -1" in e.value.message, e.value.message
        assert ("load", "account", "alice", "OperationalError") in store.errors
    with pytest.raises(MailconnectError) as e:
        Client({"key": {"base64": TEST_KEY}, "store": str(tmp_path / "x.db")}, store=store)
    assert e.value.status == "MC_E_INVALID_ARGUMENT"
    with pytest.raises(MailconnectError) as e:
        Client({}, store=store)
    assert "key" in e.value.message
