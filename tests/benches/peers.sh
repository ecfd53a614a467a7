#!/usr/bin/env bash
# Installs the peers of the scale and graph benchmarks (tests/benches/) into a virtualenv:
#   msal + msal-extensions (Microsoft's Python auth library and its persisted token cache),
#   emailproxy (simonrob/email-oauth2-proxy) and requests (the Graph benchmark's HTTP peer),
#   all from PyPI; plus hyperfine from Debian when apt-get is there and we are root (optional:
#   the benchmark times its own process loop anyway).
#
#   bash tests/benches/peers.sh            # into target-bench/peers (or $MC_BENCH_PEERS)
#
# Idempotent. Not part of CI (the benchmarks are too slow for it).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEST=${MC_BENCH_PEERS:-$ROOT/target-bench/peers}
PY=${PYTHON:-python3}

mkdir -p "$DEST"
if [ ! -x "$DEST/venv/bin/python" ]; then
    "$PY" -m venv "$DEST/venv"
fi
"$DEST/venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade \
    msal msal-extensions emailproxy requests
"$DEST/venv/bin/python" - <<'PY'
import importlib.metadata as m
print("peers:", ", ".join(f"{p} {m.version(p)}" for p in ("msal", "msal-extensions", "emailproxy", "requests", "cryptography")))
PY

if ! command -v hyperfine >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get install -y -qq hyperfine >/dev/null 2>&1 ||
            (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq hyperfine >/dev/null 2>&1)) ||
            echo "peers.sh: hyperfine not installed (optional)" >&2
    else
        echo "peers.sh: hyperfine not installed (optional; needs root and apt-get)" >&2
    fi
fi
command -v hyperfine >/dev/null 2>&1 && hyperfine --version
echo "peers.sh: ready in $DEST"
