"""The Python peers of the scale benchmark (tests/benches/scale.rs), run in the venv that
tests/benches/peers.sh makes. One subcommand per measurement; each prints one JSON line on stdout
(the access-token one prints a device-code line first, which the benchmark completes with the
emulator's scripted browser). Secrets come in through the environment and are never printed.
"""

import base64
import gc
import json
import os
import sys
import time

SCOPES = [
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/POP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
]


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def session(pool):
    """A requests session trusting the benchmark CA, with a pool as large as the concurrency."""
    import requests

    s = requests.Session()
    s.verify = os.environ["CA"]
    a = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool, max_retries=1)
    s.mount("https://", a)
    return s


def app(cache=None, pool=10):
    import msal

    return msal.PublicClientApplication(
        os.environ["CLIENT_ID"],
        authority=os.environ["AUTHORITY"],
        instance_discovery=False,
        http_client=session(pool),
        token_cache=cache,
    )


def timed_loop(fn, n):
    ns = []
    for _ in range(n):
        t = time.perf_counter_ns()
        r = fn()
        ns.append(time.perf_counter_ns() - t)
        if not r or "access_token" not in r:
            raise RuntimeError("no token: %s" % (r or {}).get("error"))
    return ns


def access_token():
    """MSAL acquire_token_silent: cached and forced refresh, with the in-memory cache and with
    msal-extensions' file-persisted cache (the closest to a persistent, cross-process store)."""
    import msal
    from msal_extensions import FilePersistence, PersistedTokenCache

    n_cached, n_refresh = int(os.environ["N_CACHED"]), int(os.environ["N_REFRESH"])
    cache = msal.SerializableTokenCache()
    a = app(cache)
    flow = a.initiate_device_flow(scopes=SCOPES)
    if "user_code" not in flow:
        raise RuntimeError("device flow: %s" % flow.get("error"))
    out({"user_code": flow["user_code"], "verification_uri": flow["verification_uri"]})
    r = a.acquire_token_by_device_flow(flow)
    if "access_token" not in r:
        raise RuntimeError("device flow: %s %s" % (r.get("error"), r.get("error_description")))
    accounts = a.get_accounts()
    if len(accounts) != 1:
        raise RuntimeError("expected one account, got %d" % len(accounts))
    result = {}
    for name, app_ in (("memory", a), ("persisted", None)):
        if app_ is None:
            path = os.environ["PERSIST_FILE"]
            with open(path, "w") as f:
                f.write(cache.serialize())
            app_ = app(PersistedTokenCache(FilePersistence(path)))
        acc = app_.get_accounts()[0]
        for _ in range(100):
            app_.acquire_token_silent(SCOPES, account=acc)
        cached = timed_loop(lambda: app_.acquire_token_silent(SCOPES, account=acc), n_cached)
        refresh = timed_loop(
            lambda: app_.acquire_token_silent(SCOPES, account=acc, force_refresh=True), n_refresh
        )
        result[name] = {"cached": cached, "refresh": refresh}
    out(result)


def refresh():
    """N refresh-token redemptions with acquire_token_by_refresh_token on CONC threads."""
    from concurrent.futures import ThreadPoolExecutor

    n, conc, rt = int(os.environ["N"]), int(os.environ["CONC"]), os.environ["MC_BENCH_RT"]
    a = app(pool=conc)
    base = status_kb("VmRSS")
    ok = 0

    def one(_):
        r = a.acquire_token_by_refresh_token(rt, SCOPES)
        return "access_token" in r

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=conc) as ex:
        for good in ex.map(one, range(n)):
            ok += good
    secs = time.perf_counter() - t
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    out({"secs": secs, "ok": ok, "rss_base_kb": base, "hwm_kb": status_kb("VmHWM"),
         "rss_end_kb": status_kb("VmRSS"), "threads": status_kb("Threads"),
         "cpu_s": ru.ru_utime + ru.ru_stime})


def b64url(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def idle():
    """MSAL's token cache holding N accounts: each with its own access token, refresh token,
    id token and account entry, as acquire_token_* would leave them (strings of the emulator's
    real sizes, every one distinct)."""
    import msal

    n = int(os.environ["N"])
    at, rt = os.environ["MC_BENCH_AT"], os.environ["MC_BENCH_RT"]
    tid = os.environ["TENANT"]
    token_endpoint = os.environ["AUTHORITY"] + "/oauth2/v2.0/token"
    cache = msal.SerializableTokenCache()
    a = app(cache)
    gc.collect()
    rss0 = status_kb("VmRSS")
    for i in range(n):
        oid = "00000000-0000-4000-8000-%012d" % i
        claims = {"aud": os.environ["CLIENT_ID"], "iss": "x", "tid": tid, "oid": oid, "sub": oid,
                  "preferred_username": "m%d@example.test" % i, "name": "Mailbox %d" % i,
                  "iat": 0, "exp": 0, "ver": "2.0"}
        tag = "%08d" % i
        cache.add({
            "client_id": os.environ["CLIENT_ID"],
            "scope": SCOPES,
            "token_endpoint": token_endpoint,
            "grant_type": "device_code",
            "response": {
                "access_token": at[:-8] + tag,
                "refresh_token": rt[:-8] + tag,
                "id_token": "%s.%s.%s" % (b64url({"alg": "RS256"}), b64url(claims), "s" * 342),
                "client_info": b64url({"uid": oid, "utid": tid}),
                "expires_in": 3600,
                "token_type": "Bearer",
            },
        })
    if len(a.get_accounts()) != n:
        raise RuntimeError("cache holds %d accounts, not %d" % (len(a.get_accounts()), n))
    gc.collect()
    out({"rss0_kb": rss0, "rss1_kb": status_kb("VmRSS")})


def import_time():
    t = time.perf_counter_ns()
    import msal  # noqa: F401

    out({"ns": time.perf_counter_ns() - t})


def footprint():
    """Installed size of MSAL and what it pulls in (files of each distribution)."""
    import importlib.metadata as md

    dists = ["msal", "requests", "urllib3", "certifi", "idna", "charset-normalizer", "PyJWT",
             "cryptography", "cffi", "pycparser"]
    total, native = 0, 0
    for d in dists:
        for f in md.distribution(d).files or []:
            p = f.locate()
            if os.path.isfile(p):
                size = os.path.getsize(p)
                total += size
                if str(p).endswith(".so"):
                    native += size
    em = sum(os.path.getsize(f.locate()) for f in md.distribution("emailproxy").files or []
             if os.path.isfile(f.locate()))
    out({"msal_total": total, "msal_native": native, "emailproxy": em})


def imap():
    """imaplib: connect, log in, select, fetch every message's body. MODE xoauth2 talks to
    Dovecot with TLS; MODE login talks to email-oauth2-proxy in plain text (it does TLS and
    XOAUTH2 upstream)."""
    import imaplib
    import ssl

    host, port, mode = os.environ["HOST"], int(os.environ["PORT"]), os.environ["MODE"]
    user, n = os.environ["USER_"], int(os.environ["N"])
    t0 = time.perf_counter()
    if mode == "xoauth2":
        ctx = ssl.create_default_context(cafile=os.environ["CA"])
        m = imaplib.IMAP4_SSL(host, port, ssl_context=ctx)
        tok = os.environ["MC_BENCH_TOKEN"]
        m.authenticate("XOAUTH2", lambda _: ("user=%s\x01auth=Bearer %s\x01\x01" % (user, tok)).encode())
    else:
        m = imaplib.IMAP4(host, port)
        m.login(user, os.environ["PROXY_PASSWORD"])
    t1 = time.perf_counter()
    m.select("INBOX", readonly=True)
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
    count = sum(1 for d in data if isinstance(d, tuple))
    t2 = time.perf_counter()
    m.logout()
    if typ != "OK" or count != n:
        raise RuntimeError("fetched %d of %d (%s)" % (count, n, typ))
    out({"login_s": t1 - t0, "fetch_s": t2 - t1, "total_s": t2 - t0})


if __name__ == "__main__":
    {
        "access-token": access_token,
        "refresh": refresh,
        "idle": idle,
        "import-time": import_time,
        "footprint": footprint,
        "imap": imap,
    }[sys.argv[1]]()
