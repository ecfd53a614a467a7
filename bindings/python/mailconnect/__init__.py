"""Python binding of mailconnect (ctypes over the C ABI in include/mailconnect.h).

    from mailconnect import Client
    with Client({"store": "/tmp/mc.db"}) as c:
        c.put_account({...})
        c.connect("sales", on_device_code=lambda code, uri, msg: print(msg))
        report = c.test("sales")
        token = c.access_token("sales")

Threading: a Client may be used from several threads at once; calls block (run them in a thread
to keep a UI responsive). Callbacks run on mailconnect threads; they must not call back into the
Client. The native library is found through $MAILCONNECT_LIB, next to this package, or in the
repository's target/{release,debug}.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import threading
from ctypes import CFUNCTYPE, POINTER, Structure, c_char_p, c_int32, c_size_t, c_uint32, c_void_p
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

__all__ = ["Client", "Cancel", "MailconnectError", "ABI_VERSION", "PROTO_IMAP", "PROTO_POP3", "PROTO_SMTP", "library_path"]

ABI_VERSION = 1
PROTO_IMAP, PROTO_POP3, PROTO_SMTP = 1, 2, 4
TEST_SEND_PROBE = 0x100
_PROTOS = {"imap": PROTO_IMAP, "pop3": PROTO_POP3, "smtp": PROTO_SMTP}


def library_path() -> Path:
    """Where the native library is loaded from."""
    env = os.environ.get("MAILCONNECT_LIB")
    if env:
        return Path(env)
    name = {"nt": "mailconnect.dll"}.get(os.name, "libmailconnect.dylib" if os.uname().sysname == "Darwin" else "libmailconnect.so")
    here = Path(__file__).resolve().parent
    candidates = [here / name]
    for parent in here.parents:
        candidates += [parent / "target" / "release" / name, parent / "target" / "debug" / name]
    for c in candidates:
        if c.exists():
            return c
    raise OSError(f"{name} not found; set MAILCONNECT_LIB to its path (looked in {', '.join(map(str, candidates[:3]))}, ...)")


OPEN_URL = CFUNCTYPE(c_int32, c_void_p, c_char_p)
DEVICE_CODE = CFUNCTYPE(None, c_void_p, c_char_p, c_char_p, c_char_p)
PROGRESS = CFUNCTYPE(None, c_void_p, c_char_p)


class _Callbacks(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("user_data", c_void_p),
        ("on_open_url", OPEN_URL),
        ("on_device_code", DEVICE_CODE),
        ("on_progress", PROGRESS),
    ]


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(library_path()))
    sigs: dict[str, tuple[list, Any]] = {
        "mc_abi_version": ([], c_uint32),
        "mc_version": ([], c_char_p),
        "mc_status_name": ([c_int32], c_char_p),
        "mc_last_error_code": ([], c_int32),
        "mc_last_error_message": ([], c_char_p),
        "mc_last_error_diagnostic": ([], c_char_p),
        "mc_string_free": ([c_void_p], None),
        "mc_client_open": ([c_char_p, POINTER(c_void_p)], c_int32),
        "mc_client_free": ([c_void_p], None),
        "mc_account_put": ([c_void_p, c_char_p], c_int32),
        "mc_account_get": ([c_void_p, c_char_p, POINTER(c_void_p)], c_int32),
        "mc_account_list": ([c_void_p, POINTER(c_void_p)], c_int32),
        "mc_account_remove": ([c_void_p, c_char_p], c_int32),
        "mc_registration_put": ([c_void_p, c_char_p], c_int32),
        "mc_registration_list": ([c_void_p, POINTER(c_void_p)], c_int32),
        "mc_registration_remove": ([c_void_p, c_char_p], c_int32),
        "mc_status": ([c_void_p, c_char_p, POINTER(c_void_p)], c_int32),
        "mc_connect": ([c_void_p, c_char_p, POINTER(_Callbacks), c_void_p], c_int32),
        "mc_disconnect": ([c_void_p, c_char_p], c_int32),
        "mc_test": ([c_void_p, c_char_p, c_uint32, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_access_token": ([c_void_p, c_char_p, c_uint32, POINTER(c_void_p)], c_int32),
        "mc_sasl_xoauth2": ([c_void_p, c_char_p, c_uint32, POINTER(c_void_p)], c_int32),
        "mc_send": ([c_void_p, c_char_p, c_char_p, c_size_t, c_void_p], c_int32),
        "mc_list_folders": ([c_void_p, c_char_p, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_fetch": ([c_void_p, c_char_p, c_char_p, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_cancel_new": ([POINTER(c_void_p)], c_int32),
        "mc_cancel_trigger": ([c_void_p], None),
        "mc_cancel_free": ([c_void_p], None),
    }
    for name, (args, res) in sigs.items():
        f = getattr(lib, name)
        f.argtypes = args
        f.restype = res
    abi = lib.mc_abi_version()
    if abi != ABI_VERSION:
        raise OSError(f"{library_path()} has ABI version {abi}; this binding needs {ABI_VERSION}")
    return lib


_lib = _load()
VERSION: str = _lib.mc_version().decode()


class MailconnectError(Exception):
    """A failed call: `code` (negative), `status` (its name), `message`, `diagnostic` (dict: the
    catalog entry with `code`, `en`/`de` title, explanation and fix, and the raw `evidence`)."""

    def __init__(self, code: int, message: str, diagnostic: dict):
        super().__init__(f"{_lib.mc_status_name(code).decode()}: {message}")
        self.code = code
        self.status = _lib.mc_status_name(code).decode()
        self.message = message
        self.diagnostic = diagnostic


def _check(rc: int) -> None:
    if rc != 0:
        msg = (_lib.mc_last_error_message() or b"").decode("utf-8", "replace")
        diag_raw = (_lib.mc_last_error_diagnostic() or b"{}").decode("utf-8", "replace")
        try:
            diag = json.loads(diag_raw)
        except ValueError:
            diag = {"raw": diag_raw}
        raise MailconnectError(rc, msg, diag)


def _take(p: c_void_p) -> str:
    try:
        return ctypes.cast(p, c_char_p).value.decode("utf-8")
    finally:
        _lib.mc_string_free(p)


def _b(s: str) -> bytes:
    return s.encode("utf-8")


class Cancel:
    """A cancellation token: pass it to blocking calls and call `trigger()` from any thread."""

    def __init__(self) -> None:
        h = c_void_p()
        _check(_lib.mc_cancel_new(ctypes.byref(h)))
        self._h = h

    def trigger(self) -> None:
        _lib.mc_cancel_trigger(self._h)

    def close(self) -> None:
        if self._h:
            _lib.mc_cancel_free(self._h)
            self._h = c_void_p()

    def __enter__(self) -> "Cancel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    """A mailconnect client over one token store (see the README for the options)."""

    def __init__(self, options: dict) -> None:
        h = c_void_p()
        _check(_lib.mc_client_open(_b(json.dumps(options)), ctypes.byref(h)))
        self._h = h
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the client; calls in progress on other threads end with MC_E_CANCELLED."""
        with self._lock:
            if self._h:
                _lib.mc_client_free(self._h)
                self._h = c_void_p()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _out(self, fn: Callable, *args: Any) -> str:
        out = c_void_p()
        _check(fn(self._h, *args, ctypes.byref(out)))
        return _take(out)

    # accounts and registrations
    def put_registration(self, registration: dict) -> None:
        _check(_lib.mc_registration_put(self._h, _b(json.dumps(registration))))

    def registrations(self) -> list:
        return json.loads(self._out(_lib.mc_registration_list))

    def put_account(self, account: dict) -> None:
        _check(_lib.mc_account_put(self._h, _b(json.dumps(account))))

    def account(self, account_id: str) -> dict:
        return json.loads(self._out(_lib.mc_account_get, _b(account_id)))

    def accounts(self) -> list:
        return json.loads(self._out(_lib.mc_account_list))

    def remove_account(self, account_id: str) -> None:
        _check(_lib.mc_account_remove(self._h, _b(account_id)))

    # the three verbs
    def connect(
        self,
        account_id: str,
        on_device_code: Optional[Callable[[str, str, str], None]] = None,
        on_open_url: Optional[Callable[[str], bool]] = None,
        on_progress: Optional[Callable[[str], None]] = None,
        cancel: Optional[Cancel] = None,
    ) -> None:
        """Authorize the account. Callbacks run on a mailconnect thread; exceptions in them are
        swallowed (they cannot cross the C boundary). `on_open_url` returns True when it showed the page."""

        def open_url(_ud, url):
            try:
                return 1 if (on_open_url and on_open_url(url.decode())) else 0
            except Exception:  # noqa: BLE001 - never unwind into C
                return 0

        def device(_ud, code, uri, msg):
            try:
                if on_device_code:
                    on_device_code(code.decode(), uri.decode(), msg.decode())
            except Exception:  # noqa: BLE001
                pass

        def progress(_ud, stage):
            try:
                if on_progress:
                    on_progress(stage.decode())
            except Exception:  # noqa: BLE001
                pass

        # The CFUNCTYPE objects must stay alive for the whole call.
        cb = _Callbacks(1, None, OPEN_URL(open_url), DEVICE_CODE(device), PROGRESS(progress))
        _check(_lib.mc_connect(self._h, _b(account_id), ctypes.byref(cb), cancel._h if cancel else None))

    def disconnect(self, account_id: str) -> None:
        _check(_lib.mc_disconnect(self._h, _b(account_id)))

    def test(self, account_id: str, protocols: Iterable[str] = (), send_probe: bool = False, cancel: Optional[Cancel] = None) -> dict:
        bits = sum(_PROTOS[p] for p in protocols) | (TEST_SEND_PROBE if send_probe else 0)
        out = c_void_p()
        _check(_lib.mc_test(self._h, _b(account_id), bits, cancel._h if cancel else None, ctypes.byref(out)))
        return json.loads(_take(out))

    def status(self, account_id: str) -> dict:
        return json.loads(self._out(_lib.mc_status, _b(account_id)))

    # tokens for the host's own mail code
    def access_token(self, account_id: str, protocol: int = 0) -> str:
        return self._out(_lib.mc_access_token, _b(account_id), protocol)

    def sasl_xoauth2(self, account_id: str, protocol: int = 0) -> str:
        return self._out(_lib.mc_sasl_xoauth2, _b(account_id), protocol)

    # mail
    def send(self, account_id: str, rfc5322: bytes, cancel: Optional[Cancel] = None) -> None:
        _check(_lib.mc_send(self._h, _b(account_id), rfc5322, len(rfc5322), cancel._h if cancel else None))

    def folders(self, account_id: str, cancel: Optional[Cancel] = None) -> list:
        out = c_void_p()
        _check(_lib.mc_list_folders(self._h, _b(account_id), cancel._h if cancel else None, ctypes.byref(out)))
        return json.loads(_take(out))

    def fetch(self, account_id: str, query: Optional[dict] = None, cancel: Optional[Cancel] = None) -> list:
        """Messages as dicts with `id`, `size`, `flags`, `internal_date` and `raw` (bytes)."""
        out = c_void_p()
        q = _b(json.dumps(query)) if query is not None else None
        _check(_lib.mc_fetch(self._h, _b(account_id), q, cancel._h if cancel else None, ctypes.byref(out)))
        msgs = json.loads(_take(out))
        for m in msgs:
            m["raw"] = base64.b64decode(m["raw"])
        return msgs
