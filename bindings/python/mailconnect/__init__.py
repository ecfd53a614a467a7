"""Python binding of mailconnect (ctypes over the C ABI in include/mailconnect.h).

    from mailconnect import Client
    with Client({"store": "/tmp/mc.db"}) as c:
        c.put_account({...})
        c.connect("sales", on_device_code=lambda code, uri, msg: print(msg))
        report = c.test("sales")
        token = c.access_token("sales")

Host integration (README): the host's own sign-in window (`begin_authorization`, then
`complete_authorization` / `poll_authorization` / `wait_authorization`, or `abort_authorization`),
events (`next_event(timeout)` and `for ev in client.events(timeout=...)`), a host-owned store
(`Client(options, store=SqliteStore(path))` or any `HostStore`), the background refresher
(`start_refresher` / `stop_refresher`, or one round with `run_refresher`), and mailconnect's log
(`set_log_callback`, process-wide). The proxy every connection takes is stored with `set_proxy` and
read back, without its password, with `proxy()`. Tenant setup for a vendor's setup wizard:
`admin_register` creates the app registration through Microsoft Graph with one administrator
sign-in, `admin_check` reads one back and reports what deviates.

Every call that goes to the network takes an optional `cancel=` (a `Cancel`).

Threading: a Client may be used from several threads at once; calls block (run them in a thread
to keep a UI responsive). Callbacks run on mailconnect threads; they must not call back into the
Client. The native library is found through $MAILCONNECT_LIB, next to this package, or in the
repository's target/{release,debug}.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import json
import logging
import os
import re
import sqlite3
import threading
import time
from ctypes import CFUNCTYPE, POINTER, Structure, c_char_p, c_int32, c_int64, c_size_t, c_uint32, c_void_p
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Tuple, Union

__all__ = [
    "Client", "Cancel", "MailconnectError", "Authorization", "PollResult", "Event", "RefreshReport", "HostStore", "SqliteStore",
    "Address", "Attachment", "Message", "SendResult",
    "ABI_VERSION", "PROTO_IMAP", "PROTO_POP3", "PROTO_SMTP", "STORE_OK", "STORE_NOT_FOUND", "STORE_CONFLICT", "library_path",
    "LOG_OFF", "LOG_ERROR", "LOG_WARN", "LOG_INFO", "LOG_DEBUG", "LOG_TRACE", "set_log_callback", "last_error_code",
]

ABI_VERSION = 2
PROTO_IMAP, PROTO_POP3, PROTO_SMTP = 1, 2, 4
TEST_SEND_PROBE = 0x100
STORE_OK, STORE_NOT_FOUND, STORE_CONFLICT = 0, 1, 2
STORE_CALLBACKS_VERSION = 1
LOG_OFF, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE = 0, 1, 2, 3, 4, 5
_LOG_LEVELS = {"off": LOG_OFF, "error": LOG_ERROR, "warn": LOG_WARN, "info": LOG_INFO, "debug": LOG_DEBUG, "trace": LOG_TRACE}
_log = logging.getLogger("mailconnect")
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
# mc_log_fn(user_data, level, target, message)
LOG_FN = CFUNCTYPE(None, c_void_p, c_int32, c_char_p, c_char_p)


class _Callbacks(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("user_data", c_void_p),
        ("on_open_url", OPEN_URL),
        ("on_device_code", DEVICE_CODE),
        ("on_progress", PROGRESS),
    ]


# mc_store_callbacks: load, compare_and_swap, remove, list (records are (kind, id) -> blob, version).
STORE_LOAD = CFUNCTYPE(c_int32, c_void_p, c_char_p, c_char_p, c_void_p)
STORE_CAS = CFUNCTYPE(c_int32, c_void_p, c_char_p, c_char_p, c_void_p, c_size_t, c_int64, c_int64)
STORE_REMOVE = CFUNCTYPE(c_int32, c_void_p, c_char_p, c_char_p)
STORE_LIST = CFUNCTYPE(c_int32, c_void_p, c_char_p, c_void_p)


class _StoreCallbacks(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("user_data", c_void_p),
        ("load", STORE_LOAD),
        ("compare_and_swap", STORE_CAS),
        ("remove", STORE_REMOVE),
        ("list", STORE_LIST),
    ]


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(library_path()))
    sigs: dict[str, tuple[list, Any]] = {
        "mc_abi_version_get": ([], c_uint32),
        "mc_version_get": ([], c_char_p),
        "mc_result_name_get": ([c_int32], c_char_p),
        "mc_error_code_get": ([], c_int32),
        "mc_error_message_get": ([], c_char_p),
        "mc_error_diagnostic_get": ([], c_char_p),
        "mc_string_free": ([c_void_p], None),
        "mc_client_open": ([c_char_p, POINTER(c_void_p)], c_int32),
        "mc_client_free": ([c_void_p], None),
        "mc_account_put": ([c_void_p, c_char_p], c_int32),
        "mc_account_get": ([c_void_p, c_char_p, POINTER(c_void_p)], c_int32),
        "mc_account_list": ([c_void_p, POINTER(c_void_p)], c_int32),
        "mc_account_remove": ([c_void_p, c_char_p], c_int32),
        "mc_registration_put": ([c_void_p, c_char_p], c_int32),
        "mc_registration_get": ([c_void_p, c_char_p, POINTER(c_void_p)], c_int32),
        "mc_registration_list": ([c_void_p, POINTER(c_void_p)], c_int32),
        "mc_registration_remove": ([c_void_p, c_char_p], c_int32),
        "mc_proxy_set": ([c_void_p, c_char_p], c_int32),
        "mc_proxy_get": ([c_void_p, POINTER(c_void_p)], c_int32),
        "mc_account_status_get": ([c_void_p, c_char_p, POINTER(c_void_p)], c_int32),
        "mc_account_connect": ([c_void_p, c_char_p, POINTER(_Callbacks), c_void_p], c_int32),
        "mc_account_disconnect": ([c_void_p, c_char_p, c_void_p], c_int32),
        "mc_account_test": ([c_void_p, c_char_p, c_uint32, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_admin_register": ([c_void_p, c_char_p, POINTER(_Callbacks), c_void_p, POINTER(c_void_p)], c_int32),
        "mc_admin_check": ([c_void_p, c_char_p, c_char_p, POINTER(_Callbacks), c_void_p, POINTER(c_void_p)], c_int32),
        "mc_token_get": ([c_void_p, c_char_p, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_sasl_xoauth2_get": ([c_void_p, c_char_p, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_graph_token_get": ([c_void_p, c_char_p, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_message_send": ([c_void_p, c_char_p, c_char_p, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_mail_send": ([c_void_p, c_char_p, c_char_p, c_size_t, c_void_p], c_int32),
        "mc_folder_list": ([c_void_p, c_char_p, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_mail_fetch": ([c_void_p, c_char_p, c_char_p, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_cancel_new": ([POINTER(c_void_p)], c_int32),
        "mc_cancel_trigger": ([c_void_p], None),
        "mc_cancel_free": ([c_void_p], None),
        "mc_authorization_begin": ([c_void_p, c_char_p, c_char_p, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_authorization_complete": ([c_void_p, c_char_p, c_char_p, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_authorization_poll": ([c_void_p, c_char_p, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_authorization_wait": ([c_void_p, c_char_p, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_authorization_abort": ([c_void_p, c_char_p], c_int32),
        "mc_events_configure": ([c_void_p, c_char_p], c_int32),
        "mc_events_next": ([c_void_p, c_int32, POINTER(c_void_p)], c_int32),
        "mc_refresher_start": ([c_void_p, c_char_p], c_int32),
        "mc_refresher_stop": ([c_void_p], c_int32),
        "mc_refresher_run": ([c_void_p, c_char_p, c_void_p, POINTER(c_void_p)], c_int32),
        "mc_log_callback_set": ([LOG_FN, c_void_p, c_int32], c_int32),
        "mc_client_open_with_store": ([c_char_p, POINTER(_StoreCallbacks), POINTER(c_void_p)], c_int32),
        "mc_store_record_set": ([c_void_p, c_char_p, c_size_t, c_int64], c_int32),
        "mc_store_list_add": ([c_void_p, c_char_p, c_char_p, c_size_t, c_int64], c_int32),
    }
    for name, (args, res) in sigs.items():
        f = getattr(lib, name)
        f.argtypes = args
        f.restype = res
    abi = lib.mc_abi_version_get()
    if abi != ABI_VERSION:
        raise OSError(f"{library_path()} has ABI version {abi}; this binding needs {ABI_VERSION}")
    return lib


_lib = _load()
VERSION: str = _lib.mc_version_get().decode()


class MailconnectError(Exception):
    """A failed call: `code` (negative, from `mc_error_code_get`), `status` (its name), `message`,
    `diagnostic` (dict: the catalog entry with `code`, `en`/`de` title, explanation and fix, and the
    raw `evidence`)."""

    def __init__(self, code: int, message: str, diagnostic: dict):
        super().__init__(f"{_lib.mc_result_name_get(code).decode()}: {message}")
        self.code = code
        self.status = _lib.mc_result_name_get(code).decode()
        self.message = message
        self.diagnostic = diagnostic


def last_error_code() -> int:
    """The status code of the most recent mailconnect call on this thread (0 after a success):
    `mc_error_code_get`. Failed calls raise `MailconnectError` with it as `code` anyway."""
    return int(_lib.mc_error_code_get())


def _check(rc: int) -> None:
    if rc != 0:
        # The thread's last error: the code, message and diagnostic of the call that just failed
        # (ctypes calls run on the calling thread, where mailconnect keeps them).
        code = _lib.mc_error_code_get() or rc
        msg = (_lib.mc_error_message_get() or b"").decode("utf-8", "replace")
        diag_raw = (_lib.mc_error_diagnostic_get() or b"{}").decode("utf-8", "replace")
        try:
            diag = json.loads(diag_raw)
        except ValueError:
            diag = {"raw": diag_raw}
        raise MailconnectError(code, msg, diag)


def _take(p: c_void_p) -> str:
    try:
        return ctypes.cast(p, c_char_p).value.decode("utf-8")
    finally:
        _lib.mc_string_free(p)


def _b(s: str) -> bytes:
    return s.encode("utf-8")


def _connect_callbacks(
    on_device_code: Optional[Callable[[str, str, str], None]],
    on_open_url: Optional[Callable[[str], bool]],
    on_progress: Optional[Callable[[str], None]],
) -> _Callbacks:
    """`mc_connect_callbacks` over the host's Python callables (connect, admin_register,
    admin_check). Exceptions in them are swallowed: they cannot cross the C boundary. The result
    holds the CFUNCTYPE objects: keep it alive for the whole call."""

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

    return _Callbacks(1, None, OPEN_URL(open_url), DEVICE_CODE(device), PROGRESS(progress))


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


def _cancel(cancel: Optional[Cancel]) -> Optional[c_void_p]:
    """The native token of an optional `cancel=` argument."""
    if cancel is None:
        return None
    if not isinstance(cancel, Cancel):
        raise TypeError(f"cancel must be a mailconnect.Cancel or None, not {type(cancel).__name__}")
    return cancel._h


# The log callback mailconnect calls (process-wide); kept here so that it stays callable.
_log_callback: Optional[Any] = None
_log_lock = threading.Lock()


def set_log_callback(callback: Optional[Callable[[int, str, str], None]], level: Union[int, str] = LOG_INFO) -> None:
    """Receive mailconnect's log records at or above `level` (`LOG_ERROR` .. `LOG_TRACE`, or
    `"error"` .. `"trace"`) as `callback(level, target, message)`; `None` or `LOG_OFF` stops it.
    Process-wide (every client); replaces the previous callback, and returns after calls of the
    previous one in progress have returned. Records never carry tokens, codes or secrets.

    The callback runs on the thread that logs (often a mailconnect thread), possibly on several at
    once; it must not call into mailconnect. Exceptions in it are swallowed. To route records into
    Python's `logging`: `set_log_callback(lambda lvl, target, msg: logging.getLogger(target).log(
    {1: 40, 2: 30, 3: 20, 4: 10, 5: 5}[lvl], msg), "info")`.

    If the process already has a global `tracing` subscriber (not the case for Python programs),
    that one keeps receiving the records instead."""
    global _log_callback
    if isinstance(level, str):
        try:
            level = _LOG_LEVELS[level.lower()]
        except KeyError:
            raise ValueError(f"unknown log level {level!r}; use one of {', '.join(_LOG_LEVELS)}") from None

    def forward(_ud, lvl, target, message):
        try:
            callback(int(lvl), (target or b"").decode("utf-8", "replace"), (message or b"").decode("utf-8", "replace"))
        except BaseException:  # noqa: BLE001 - never unwind into C
            pass

    with _log_lock:
        fn = LOG_FN(forward) if callback is not None and level != LOG_OFF else LOG_FN()
        _check(_lib.mc_log_callback_set(fn, None, int(level)))
        # mailconnect no longer calls the previous one (mc_log_callback_set waited for its calls).
        _log_callback = fn if fn else None


@atexit.register
def _stop_logging() -> None:
    # No call into a Python callback while the interpreter shuts down.
    if _log_callback is not None:
        _lib.mc_log_callback_set(LOG_FN(), None, LOG_OFF)


def _known(cls: type, d: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass(frozen=True)
class Authorization:
    """A sign-in begun with `Client.begin_authorization`: what the host shows.

    Browser flow: show `url` (in your web view or the system browser); `loopback` says whether
    mailconnect listens on `redirect_uri` (then `wait_authorization`) or your web view must capture
    the redirect (then `complete_authorization` with the captured URL). Device flow (`flow ==
    "device_code"`): show `message` (or `user_code` and `verification_uri`), then
    `poll_authorization` / `wait_authorization`. The handle is single-use and ends at `expires_at`.
    """

    handle: str
    account_id: str
    flow: str
    expires_at: str
    expires_in_secs: int
    url: Optional[str] = None
    redirect_uri: Optional[str] = None
    loopback: Optional[bool] = None
    user_code: Optional[str] = None
    verification_uri: Optional[str] = None
    verification_uri_complete: Optional[str] = None
    message: Optional[str] = None
    interval_secs: Optional[int] = None

    @classmethod
    def from_json(cls, text: str) -> "Authorization":
        return cls(**_known(cls, json.loads(text)))


@dataclass(frozen=True)
class PollResult:
    """One check of a device-code sign-in: `connected` with the account's `status`, or pending
    (poll again after `retry_after` seconds)."""

    connected: bool
    retry_after: float = 0.0
    status: Optional[dict] = None

    @classmethod
    def from_json(cls, text: str) -> "PollResult":
        d = json.loads(text)
        if d.get("state") == "connected":
            return cls(True, 0.0, d.get("status"))
        return cls(False, d.get("retry_after_ms", 1000) / 1000.0, None)


@dataclass(frozen=True)
class RefreshReport:
    """What one refresher round did (`Client.run_refresher`), as counts of accounts: looked at,
    `fresh` (not due yet), `refreshed`, `failed` (transient; retried next round),
    `needs_reauthorization`, `backing_off` (their tenant is throttled) and `not_connected`. Failures
    of single accounts are also raised as events."""

    accounts: int = 0
    fresh: int = 0
    refreshed: int = 0
    failed: int = 0
    needs_reauthorization: int = 0
    backing_off: int = 0
    not_connected: int = 0

    @classmethod
    def from_json(cls, text: str) -> "RefreshReport":
        return cls(**{k: int(v) for k, v in _known(cls, json.loads(text)).items()})


@dataclass(frozen=True)
class Event:
    """An event of the client's queue: `seq` (increasing; a gap means dropped events), `time`
    (RFC 3339), `type` (`token_refreshed`, `needs_reauthorization`, `reauthorization_due`,
    `connect_progress`, `state_changed`, `log`, `events_dropped`) and the other fields in `data` (the whole event;
    `ev["stage"]`, `ev.get("diagnostic")`)."""

    seq: int
    time: str
    type: str
    data: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, text: str) -> "Event":
        d = json.loads(text)
        return cls(int(d.get("seq", 0)), str(d.get("time", "")), str(d.get("type", "")), d)

    @property
    def account_id(self) -> Optional[str]:
        return self.data.get("account_id")

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


@dataclass(frozen=True)
class Address:
    """A mail address with an optional display name (`Address("anna@example.com", "Anna Müller")`).
    Wherever a `Message` takes addresses, a plain string `"anna@example.com"` or a dict
    `{"name": ..., "address": ...}` works too."""

    address: str
    name: Optional[str] = None

    def to_json(self) -> Union[str, Dict[str, str]]:
        return self.address if not self.name else {"name": self.name, "address": self.address}


AddressLike = Union[str, Address, Dict[str, str]]


def _address(a: AddressLike) -> Union[str, Dict[str, str]]:
    if isinstance(a, Address):
        return a.to_json()
    if isinstance(a, str):
        return a
    if isinstance(a, dict):
        return dict(a)
    raise TypeError(f"an address is a str, an Address or a dict, not {type(a).__name__}")


def _addresses(v: Union[None, AddressLike, Iterable[AddressLike]]) -> list:
    if v is None:
        return []
    if isinstance(v, (str, Address, dict)):
        return [_address(v)]
    return [_address(a) for a in v]


@dataclass(frozen=True)
class Attachment:
    """An attachment of a `Message`: a file (`path`, read by mailconnect while sending) or bytes
    (`content`, sent as base64). `file_name` is what the recipient sees (default: the path's file
    name, else "attachment"); `content_type` defaults to `application/octet-stream`; with
    `content_id` it is an inline part the HTML body shows as `cid:<content_id>`. Non-ASCII file
    names ("Rechnung für März.pdf") are encoded as mail needs."""

    path: Optional[Union[str, os.PathLike]] = None
    content: Optional[bytes] = None
    file_name: Optional[str] = None
    content_type: Optional[str] = None
    content_id: Optional[str] = None

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike], file_name: Optional[str] = None, content_type: Optional[str] = None,
                  content_id: Optional[str] = None) -> "Attachment":
        return cls(path=path, file_name=file_name, content_type=content_type, content_id=content_id)

    @classmethod
    def from_bytes(cls, content: bytes, file_name: str, content_type: Optional[str] = None,
                   content_id: Optional[str] = None) -> "Attachment":
        return cls(content=bytes(content), file_name=file_name, content_type=content_type, content_id=content_id)

    def to_json(self) -> Dict[str, str]:
        if (self.path is None) == (self.content is None):
            raise ValueError("an Attachment needs exactly one of path and content")
        d: Dict[str, str] = {}
        if self.path is not None:
            d["path"] = os.fspath(self.path)
        else:
            d["content_base64"] = base64.b64encode(self.content).decode("ascii")
        for k in ("file_name", "content_type", "content_id"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        return d


@dataclass
class Message:
    """A message for `Client.send_message`; mailconnect builds the MIME (non-ASCII subjects, names
    and file names encoded as mail needs) and sends it over the account's transport (SMTP or
    Microsoft Graph).

    `to`, `cc`, `bcc`, `reply_to`: one address or a list (see `Address`); at least one recipient.
    `from_`: the sender (default: the account's mailbox). `text` and/or `html`: the bodies.
    `attachments`: `Attachment`s. `headers`: extra headers, a dict or (name, value) pairs.
    `importance`: "low", "normal" or "high". `read_receipt`: ask for one."""

    to: Union[AddressLike, Iterable[AddressLike]] = field(default_factory=list)
    subject: str = ""
    text: Optional[str] = None
    html: Optional[str] = None
    cc: Union[AddressLike, Iterable[AddressLike]] = field(default_factory=list)
    bcc: Union[AddressLike, Iterable[AddressLike]] = field(default_factory=list)
    reply_to: Union[AddressLike, Iterable[AddressLike]] = field(default_factory=list)
    from_: Optional[AddressLike] = None
    attachments: Iterable[Attachment] = field(default_factory=list)
    headers: Union[Dict[str, str], Iterable[Tuple[str, str]]] = field(default_factory=list)
    importance: Optional[str] = None
    read_receipt: bool = False

    def to_json(self) -> Dict[str, Any]:
        """The message JSON of `mc_message_send` (fields left empty are left out)."""
        d: Dict[str, Any] = {}
        if self.from_ is not None:
            d["from"] = _address(self.from_)
        for k in ("to", "cc", "bcc", "reply_to"):
            v = _addresses(getattr(self, k))
            if v:
                d[k] = v
        d["subject"] = self.subject
        if self.text is not None:
            d["text"] = self.text
        if self.html is not None:
            d["html"] = self.html
        atts = [a.to_json() if isinstance(a, Attachment) else dict(a) for a in self.attachments]
        if atts:
            d["attachments"] = atts
        pairs = self.headers.items() if isinstance(self.headers, dict) else self.headers
        hs = [{"name": n, "value": v} for n, v in pairs]
        if hs:
            d["headers"] = hs
        if self.importance is not None:
            d["importance"] = self.importance
        if self.read_receipt:
            d["read_receipt"] = True
        return d


@dataclass(frozen=True)
class SendResult:
    """What `Client.send_message` did: `transport` ("smtp" or "graph"), the `message_id`
    (`<...@...>`, for finding the message or threading answers), the server's acceptance `reply`,
    and the `size` in bytes sent."""

    transport: str
    message_id: str
    reply: str = ""
    size: int = 0

    @classmethod
    def from_json(cls, text: str) -> "SendResult":
        return cls(**_known(cls, json.loads(text)))


AuthorizationLike = Union[Authorization, str]


def _handle(a: AuthorizationLike) -> bytes:
    return _b(a.handle if isinstance(a, Authorization) else a)


class HostStore:
    """A host-owned token store: mailconnect's registrations, accounts, tokens and refresh leases
    kept in the host's own database as opaque encrypted blobs (see `mc_store_callbacks` in the C
    header). Records are identified by (`kind`, `id`); `kind` is `tokens`, `account`,
    `registration` or `lease`. Implement the four methods; they run on mailconnect threads, possibly
    several at once, so they must be thread-safe and must not call the Client.

    Blobs have no size limit: store every byte and return exactly those bytes (a BLOB column). A
    blob cut short is reported as "stored incompletely" (diagnostic MC-TOKEN-TRUNCATED). An
    exception raised by a method never reaches mailconnect's threads: the call fails with MC_E_STORE
    (the callback returns a negative number) and the exception goes to `on_error`.
    """

    def load(self, kind: str, id: str) -> Optional[Tuple[bytes, int]]:
        """The record's (blob, version), or None."""
        raise NotImplementedError

    def compare_and_swap(self, kind: str, id: str, data: bytes, expected_version: int, new_version: int) -> bool:
        """Atomically store `data` with `new_version` if the stored version is `expected_version`
        (0: the record must not exist). False when it is not (a conflict)."""
        raise NotImplementedError

    def remove(self, kind: str, id: str) -> bool:
        """Delete the record; False when there was none."""
        raise NotImplementedError

    def list(self, kind: str) -> Iterable[Tuple[str, bytes, int]]:
        """Every record of `kind` as (id, blob, version)."""
        raise NotImplementedError

    def on_error(self, operation: str, kind: str, id: str, exc: BaseException) -> None:
        """Called with an exception raised by a method (default: logged on the `mailconnect` logger)."""
        _log.error("store callback %s(%s, %s) failed: %r", operation, kind, id, exc)


class SqliteStore(HostStore):
    """A `HostStore` in a table of a SQLite database (Python's sqlite3): `kind TEXT, id TEXT,
    version INTEGER, blob BLOB`, primary key (kind, id). One connection shared by mailconnect's
    threads under a lock."""

    def __init__(self, path: Union[str, os.PathLike], table: str = "mailconnect_records") -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", table):
            raise ValueError(f"table name {table!r} is not a plain SQL identifier")
        self.table = table
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (kind TEXT NOT NULL, id TEXT NOT NULL, "
                "version INTEGER NOT NULL, blob BLOB NOT NULL, PRIMARY KEY (kind, id))"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def load(self, kind: str, id: str) -> Optional[Tuple[bytes, int]]:
        with self._lock:
            row = self._db.execute(f"SELECT blob, version FROM {self.table} WHERE kind=? AND id=?", (kind, id)).fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]))

    def compare_and_swap(self, kind: str, id: str, data: bytes, expected_version: int, new_version: int) -> bool:
        with self._lock:
            if expected_version == 0:
                cur = self._db.execute(
                    f"INSERT OR IGNORE INTO {self.table} (kind, id, version, blob) VALUES (?, ?, ?, ?)",
                    (kind, id, new_version, sqlite3.Binary(data)),
                )
            else:
                cur = self._db.execute(
                    f"UPDATE {self.table} SET blob=?, version=? WHERE kind=? AND id=? AND version=?",
                    (sqlite3.Binary(data), new_version, kind, id, expected_version),
                )
            return cur.rowcount == 1

    def remove(self, kind: str, id: str) -> bool:
        with self._lock:
            return self._db.execute(f"DELETE FROM {self.table} WHERE kind=? AND id=?", (kind, id)).rowcount == 1

    def list(self, kind: str) -> Iterable[Tuple[str, bytes, int]]:
        with self._lock:
            rows = self._db.execute(f"SELECT id, blob, version FROM {self.table} WHERE kind=?", (kind,)).fetchall()
        return [(str(i), bytes(b), int(v)) for i, b, v in rows]


# Negative results of the store callbacks (reported inside MC_E_STORE's message).
_STORE_EXCEPTION = -1
_STORE_BAD_RESULT = -2


def _store_callbacks(store: HostStore) -> Tuple[_StoreCallbacks, tuple]:
    """The C callbacks over `store`. Exceptions never unwind into C: they become a negative result."""

    def guarded(op: str, kind: bytes, id_: bytes, body: Callable[[str, str], int]) -> int:
        k, i = kind.decode("utf-8", "replace"), (id_ or b"*").decode("utf-8", "replace")
        try:
            return body(k, i)
        except BaseException as e:  # noqa: BLE001 - nothing may cross into C
            try:
                store.on_error(op, k, i, e)
            except BaseException:  # noqa: BLE001
                pass
            return _STORE_EXCEPTION

    def load(_ud, kind, id_, out):
        def body(k: str, i: str) -> int:
            rec = store.load(k, i)
            if rec is None:
                return STORE_NOT_FOUND
            data, version = rec
            data = bytes(data)
            return STORE_OK if _lib.mc_store_record_set(out, data, len(data), int(version)) == 0 else _STORE_BAD_RESULT

        return guarded("load", kind, id_, body)

    def cas(_ud, kind, id_, data, length, expected, new_version):
        def body(k: str, i: str) -> int:
            blob = ctypes.string_at(data, length) if length else b""
            return STORE_OK if store.compare_and_swap(k, i, blob, int(expected), int(new_version)) else STORE_CONFLICT

        return guarded("compare_and_swap", kind, id_, body)

    def remove(_ud, kind, id_):
        return guarded("remove", kind, id_, lambda k, i: STORE_OK if store.remove(k, i) else STORE_NOT_FOUND)

    def list_(_ud, kind, out):
        def body(k: str, _i: str) -> int:
            for rid, data, version in store.list(k):
                data = bytes(data)
                if _lib.mc_store_list_add(out, _b(rid), data, len(data), int(version)) != 0:
                    return _STORE_BAD_RESULT
            return STORE_OK

        return guarded("list", kind, None, body)

    funcs = (STORE_LOAD(load), STORE_CAS(cas), STORE_REMOVE(remove), STORE_LIST(list_))
    return _StoreCallbacks(STORE_CALLBACKS_VERSION, None, *funcs), funcs


# mc_events_next is called in slices of at most this many ms, so that close() never frees the
# client under a waiting thread (it waits for the slice to end instead).
_EVENT_SLICE_MS = 250


class Client:
    """A mailconnect client over one token store (see the README for the options).

    With `store` (a `HostStore`, e.g. `SqliteStore`), the registrations, accounts, tokens and
    leases live in the host's own database as encrypted blobs; `options` then has no `store` but
    needs a `key` (`{"base64": ...}` from your secret store, or `{"file": PATH}`).
    """

    def __init__(self, options: dict, store: Optional[HostStore] = None) -> None:
        h = c_void_p()
        self._store_callbacks: Optional[tuple] = None
        if store is None:
            _check(_lib.mc_client_open(_b(json.dumps(options)), ctypes.byref(h)))
        else:
            cbs, funcs = _store_callbacks(store)
            _check(_lib.mc_client_open_with_store(_b(json.dumps(options)), ctypes.byref(cbs), ctypes.byref(h)))
            # The C functions must stay callable until mc_client_free has returned.
            self._store_callbacks = (cbs, funcs, store)
        self._h = h
        self._cond = threading.Condition()
        self._closed = False
        self._event_waiters = 0

    def close(self) -> None:
        """Close the client: `next_event` waits and `events()` loops on other threads end (within a
        quarter second), calls in progress on other threads end with MC_E_CANCELLED."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            while self._event_waiters:
                self._cond.wait()
            h, self._h = self._h, c_void_p()
        _lib.mc_client_free(h)
        self._store_callbacks = None

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

    def registration(self, registration_id: str) -> dict:
        """The app registration (a client secret shows as `has_client_secret` only)."""
        return json.loads(self._out(_lib.mc_registration_get, _b(registration_id)))

    def registrations(self) -> list:
        return json.loads(self._out(_lib.mc_registration_list))

    def remove_registration(self, registration_id: str) -> None:
        """Remove a registration; MC_E_STATE while accounts use it."""
        _check(_lib.mc_registration_remove(self._h, _b(registration_id)))

    # network
    def set_proxy(self, proxy: Union[None, str, dict]) -> None:
        """Store the proxy every connection takes (identity provider, Graph, IMAP, POP3, SMTP),
        sealed in the store with its password, and use it at once: in this client whatever it was
        opened with, and in every client opened later on the same store without a `proxy` or
        `no_proxy` option. `proxy` is a URL (`http://user:password@host:3128`, `socks5://...`,
        `socks5h://...`), `"direct"`, or a dict (`url`, `https`, `imap`, `pop3`, `smtp`,
        `username`, `password`, `no_proxy`), sent as JSON; `None` removes the stored setting.
        Blocks while the store is written. Raises MailconnectError: MC_E_INVALID_ARGUMENT (not a
        proxy; the message never repeats a password), MC_E_STORE. On an error nothing is stored
        and the client keeps its path."""
        if proxy is None:
            text = None
        elif isinstance(proxy, dict):
            text = _b(json.dumps(proxy))
        elif isinstance(proxy, str):
            text = _b(proxy)
        else:
            raise TypeError("proxy must be a str, a dict or None, not %s" % type(proxy).__name__)
        _check(_lib.mc_proxy_set(self._h, text))

    def proxy(self) -> dict:
        """The proxy settings: `source` (where this client's proxy comes from: `no_proxy_option`,
        `option`, `stored`, `environment`), `stored` (the stored setting with every password
        removed and `has_password` saying whether it has one; `None` when none) and `environment`
        (whether proxy variables are set). The path each connection takes is in `test()`'s report
        (`path`). Raises MailconnectError MC_E_STORE when the stored setting cannot be opened."""
        return json.loads(self._out(_lib.mc_proxy_get))

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
        # The CFUNCTYPE objects must stay alive for the whole call.
        cb = _connect_callbacks(on_device_code, on_open_url, on_progress)
        _check(_lib.mc_account_connect(self._h, _b(account_id), ctypes.byref(cb), _cancel(cancel)))

    def disconnect(self, account_id: str, cancel: Optional[Cancel] = None) -> None:
        """Forget the account's tokens (idempotent). Cancelled before they are deleted, it raises
        MC_E_CANCELLED and changes nothing; cancelled during the revocation, it stops waiting for
        the provider and succeeds."""
        _check(_lib.mc_account_disconnect(self._h, _b(account_id), _cancel(cancel)))

    def test(self, account_id: str, protocols: Iterable[str] = (), send_probe: bool = False, cancel: Optional[Cancel] = None) -> dict:
        bits = sum(_PROTOS[p] for p in protocols) | (TEST_SEND_PROBE if send_probe else 0)
        out = c_void_p()
        _check(_lib.mc_account_test(self._h, _b(account_id), bits, _cancel(cancel), ctypes.byref(out)))
        return json.loads(_take(out))

    # tenant setup (a vendor's setup wizard)
    def admin_register(
        self,
        options: dict,
        on_device_code: Optional[Callable[[str, str, str], None]] = None,
        on_open_url: Optional[Callable[[str], bool]] = None,
        on_progress: Optional[Callable[[str], None]] = None,
        cancel: Optional[Cancel] = None,
    ) -> dict:
        """Create the app registration mailconnect needs through Microsoft Graph, with one
        administrator sign-in to the vendor's setup registration (`mc_admin_register`), store it
        and read it back. `options` (sent as JSON): `setup_registration` and `registration_id`
        (required), `display_name`, `flow` ("browser" / "device_code"), `login_hint`, `graph`,
        `app_only`, `secret_days` (1..730), `replace`. The callbacks are `connect()`'s (run on a
        mailconnect thread; exceptions in them are swallowed); none given: the system browser.
        Returns the report: `tenant_id`, `tenant_name`, `client_id`, `registration_id`,
        `app_registration_id`, `secret_expires`, `steps`, `exchange_steps`, `findings` (empty when
        everything is as needed). The client secret is stored sealed and is in no output. Blocks
        (not from a mailconnect callback). Raises MailconnectError: MC_E_INVALID_ARGUMENT
        (options, an existing registration id without `replace`), MC_E_NOT_FOUND (the setup
        registration), MC_E_AUTHORIZATION_DENIED (declined, or too few rights:
        `diagnostic["code"] == "MC-SETUP-INSUFFICIENT-PRIVILEGES"`), MC_E_PROVIDER_CONFIGURATION,
        MC_E_TIMEOUT, MC_E_CANCELLED, MC_E_NETWORK, MC_E_TLS, MC_E_PROVIDER_UNAVAILABLE, MC_E_STORE."""
        # The CFUNCTYPE objects must stay alive for the whole call.
        cb = _connect_callbacks(on_device_code, on_open_url, on_progress)
        out = c_void_p()
        _check(_lib.mc_admin_register(self._h, _b(json.dumps(options)), ctypes.byref(cb), _cancel(cancel), ctypes.byref(out)))
        return json.loads(_take(out))

    def admin_check(
        self,
        registration_id: str,
        options: dict,
        on_device_code: Optional[Callable[[str, str, str], None]] = None,
        on_open_url: Optional[Callable[[str], bool]] = None,
        on_progress: Optional[Callable[[str], None]] = None,
        cancel: Optional[Cancel] = None,
    ) -> dict:
        """Read the stored registration `registration_id` back through Microsoft Graph (an
        administrator signs in to the setup registration; `mc_admin_check`) and report every
        deviation from what mailconnect needs, each with the catalog code the sign-in would fail
        with. `options` (sent as JSON): `setup_registration`, `flow`, `login_hint`, `graph`,
        `app_only`. Callbacks as for `connect()`. Returns the report: `registration_id`,
        `client_id`, `tenant_id`, `display_name`, `graph`, `app_only`, `findings` (errors first)
        and `ok`; deviations are in the report, not raised. Raises MailconnectError as
        `admin_register`, and MC_E_NOT_FOUND for an unknown `registration_id`."""
        cb = _connect_callbacks(on_device_code, on_open_url, on_progress)
        out = c_void_p()
        _check(
            _lib.mc_admin_check(
                self._h, _b(registration_id), _b(json.dumps(options)), ctypes.byref(cb), _cancel(cancel), ctypes.byref(out)
            )
        )
        return json.loads(_take(out))

    def status(self, account_id: str) -> dict:
        return json.loads(self._out(_lib.mc_account_status_get, _b(account_id)))

    # tokens for the host's own mail code
    def access_token(self, account_id: str, cancel: Optional[Cancel] = None) -> str:
        """A valid access token (refreshed ahead of expiry; one token serves IMAP, POP3 and SMTP).
        A secret: never log it. `cancel` ends a refresh in progress."""
        return self._out(_lib.mc_token_get, _b(account_id), _cancel(cancel))

    def sasl_xoauth2(self, account_id: str, cancel: Optional[Cancel] = None) -> str:
        """The SASL XOAUTH2 initial response (base64) for your own IMAP/POP3/SMTP code."""
        return self._out(_lib.mc_sasl_xoauth2_get, _b(account_id), _cancel(cancel))

    def graph_token(self, account_id: str, cancel: Optional[Cancel] = None) -> str:
        """A Microsoft Graph access token (audience https://graph.microsoft.com) for your own Graph
        calls, minted from the account's refresh token and refreshed like the mail token. A secret:
        never log it. Microsoft registrations only (else MC_E_INVALID_ARGUMENT); a missing consent
        for Graph's Mail.Send / Mail.ReadWrite raises with a diagnostic that says which."""
        return self._out(_lib.mc_graph_token_get, _b(account_id), _cancel(cancel))

    # mail
    def send(self, account_id: str, rfc5322: bytes, cancel: Optional[Cancel] = None) -> None:
        """Send a ready RFC 5322 message over SMTP (envelope from the header; Bcc removed)."""
        _check(_lib.mc_mail_send(self._h, _b(account_id), rfc5322, len(rfc5322), _cancel(cancel)))

    def send_message(self, account_id: str, message: Union[Message, Dict[str, Any]], cancel: Optional[Cancel] = None) -> SendResult:
        """Build `message` (a `Message`, or a dict in the JSON shape of `mc_message_send`) and send it
        over the account's transport: SMTP, Microsoft Graph, or `auto` (SMTP until the server says
        SMTP AUTH is disabled, then Graph). Sent at most once. A bad message raises
        MC_E_INVALID_ARGUMENT before anything is sent, with `diagnostic["evidence"]["field"]`
        naming the field ("to" without recipients, "attachments[1].path", ...)."""
        if isinstance(message, Message):
            spec = message.to_json()
        elif isinstance(message, dict):
            spec = message
        else:
            raise TypeError(f"message must be a mailconnect.Message or a dict, not {type(message).__name__}")
        out = c_void_p()
        _check(_lib.mc_message_send(self._h, _b(account_id), _b(json.dumps(spec)), _cancel(cancel), ctypes.byref(out)))
        return SendResult.from_json(_take(out))

    def folders(self, account_id: str, cancel: Optional[Cancel] = None) -> list:
        out = c_void_p()
        _check(_lib.mc_folder_list(self._h, _b(account_id), _cancel(cancel), ctypes.byref(out)))
        return json.loads(_take(out))

    def fetch(self, account_id: str, query: Optional[dict] = None, cancel: Optional[Cancel] = None) -> list:
        """Messages as dicts with `id`, `size`, `flags`, `internal_date` and `raw` (bytes). `query`
        (all optional): `protocol` ("imap"/"pop3"), `folder`, `uid_from`, `uid_to`, `since`
        ("YYYY-MM-DD"), `headers_only`, `limit`, `mark_seen`, `unread_only`, `transport` ("graph"
        to read over Microsoft Graph, "smtp_imap" for IMAP/POP3; default: the account's)."""
        out = c_void_p()
        q = _b(json.dumps(query)) if query is not None else None
        _check(_lib.mc_mail_fetch(self._h, _b(account_id), q, _cancel(cancel), ctypes.byref(out)))
        msgs = json.loads(_take(out))
        for m in msgs:
            m["raw"] = base64.b64decode(m["raw"])
        return msgs

    # host-driven sign-in
    def begin_authorization(
        self, account_id: str, flow: Optional[str] = None, redirect_uri: Optional[str] = None, cancel: Optional[Cancel] = None
    ) -> Authorization:
        """Begin a sign-in the host shows itself. `flow`: `browser` or `device` (default: the
        account's). `redirect_uri` (browser): a loopback URI (mailconnect listens; default the
        registration's) or a registered URI your web view intercepts, such as
        `https://login.microsoftonline.com/common/oauth2/nativeclient`."""
        opts: Dict[str, str] = {}
        if flow is not None:
            opts["flow"] = flow
        if redirect_uri is not None:
            opts["redirect_uri"] = redirect_uri
        out = c_void_p()
        _check(_lib.mc_authorization_begin(self._h, _b(account_id), _b(json.dumps(opts)) if opts else None, _cancel(cancel), ctypes.byref(out)))
        return Authorization.from_json(_take(out))

    def complete_authorization(self, authorization: AuthorizationLike, redirect: str, cancel: Optional[Cancel] = None) -> dict:
        """Finish a browser sign-in with the redirect your web view captured (the full URL, its
        query, or the code); returns the account's status. A URL of another sign-in or redirect URI
        raises MC_E_STATE and the sign-in stays pending; an error redirect ends it."""
        out = c_void_p()
        _check(_lib.mc_authorization_complete(self._h, _handle(authorization), _b(redirect), _cancel(cancel), ctypes.byref(out)))
        return json.loads(_take(out))

    def poll_authorization(self, authorization: AuthorizationLike, cancel: Optional[Cancel] = None) -> PollResult:
        """Check a device-code sign-in once (no request before the provider's interval)."""
        out = c_void_p()
        _check(_lib.mc_authorization_poll(self._h, _handle(authorization), _cancel(cancel), ctypes.byref(out)))
        return PollResult.from_json(_take(out))

    def wait_authorization(self, authorization: AuthorizationLike, cancel: Optional[Cancel] = None) -> dict:
        """Block until the sign-in finishes (loopback redirect or device code entered); returns the
        account's status. Cancelled, the sign-in stays pending."""
        out = c_void_p()
        _check(_lib.mc_authorization_wait(self._h, _handle(authorization), _cancel(cancel), ctypes.byref(out)))
        return json.loads(_take(out))

    def abort_authorization(self, authorization: AuthorizationLike) -> None:
        """Abandon a pending sign-in (the user closed the window)."""
        _check(_lib.mc_authorization_abort(self._h, _handle(authorization)))

    # the background refresher
    def start_refresher(self, options: Optional[Dict[str, Any]] = None) -> None:
        """Keep every connected account's access token fresh in the background, on the client's own
        threads, until `stop_refresher` or `close`. `options` (all optional): `interval_secs` (30),
        `ahead_secs` (600), `jitter_secs` (120), `concurrency` (8), `backoff_min_secs` (30),
        `backoff_max_secs` (900). Returns at once; MC_E_STATE when it already runs. An account that
        needs re-authorization is reported as a `needs_reauthorization` event."""
        _check(_lib.mc_refresher_start(self._h, _b(json.dumps(options)) if options is not None else None))

    def stop_refresher(self) -> None:
        """Stop the background refresher (stopping a stopped one succeeds). Returns at once."""
        _check(_lib.mc_refresher_stop(self._h))

    def run_refresher(self, options: Optional[Dict[str, Any]] = None, cancel: Optional[Cancel] = None) -> RefreshReport:
        """Run one refresher round now on this thread (for a host with its own timer): refresh
        every account that is due under `options` (as `start_refresher`)."""
        out = c_void_p()
        q = _b(json.dumps(options)) if options is not None else None
        _check(_lib.mc_refresher_run(self._h, q, _cancel(cancel), ctypes.byref(out)))
        return RefreshReport.from_json(_take(out))

    # events
    def configure_events(self, capacity: Optional[int] = None, log_level: Optional[str] = None) -> None:
        """Size the event queue (2..100000, default 1024) and turn log records at or above
        `log_level` (`error` .. `trace`; default `off`) into `log` events."""
        opts: Dict[str, Any] = {}
        if capacity is not None:
            opts["capacity"] = capacity
        if log_level is not None:
            opts["log_level"] = log_level
        _check(_lib.mc_events_configure(self._h, _b(json.dumps(opts))))

    def next_event(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, waiting up to `timeout` seconds (0: do not wait; None: until one arrives
        or the client is closed). None when none came in time or the client was closed."""
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        while True:
            with self._cond:
                if self._closed:
                    return None
                self._event_waiters += 1
                h = self._h
            try:
                if deadline is None:
                    wait_ms = _EVENT_SLICE_MS
                else:
                    wait_ms = max(0, min(_EVENT_SLICE_MS, int((deadline - time.monotonic()) * 1000)))
                out = c_void_p()
                _check(_lib.mc_events_next(h, wait_ms, ctypes.byref(out)))
            finally:
                with self._cond:
                    self._event_waiters -= 1
                    self._cond.notify_all()
            if out:
                return Event.from_json(_take(out))
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """Iterate over events as they come: `for ev in client.events(timeout=5): ...` ends when
        none arrived for `timeout` seconds; with None it ends when the client is closed (run it on
        a thread of its own)."""
        while True:
            ev = self.next_event(timeout)
            if ev is None:
                return
            yield ev
