#!/usr/bin/env bash
# The Windows part of the test command (tests/run-all.sh runs it): build mailconnect.dll (x64, x86),
# its import libraries and mailconnect.exe with ffi/windows/build.sh, then run tests/windows.rs,
# which drives MinGW-built C hosts and mailconnect.exe under Wine against the sandbox (emulator,
# real Dovecot and Postfix, tinyproxy) on loopback. Installs what it needs (root): the Windows
# toolchain and Wine (ffi/windows/install-deps.sh) and tinyproxy. Prints how long each part took
# and the load-time figures for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

t0=$(date +%s)
echo "== windows: packages (MinGW-w64, Debian's rustc 1.96 with std sources, Wine 8, tinyproxy)"
sh ffi/windows/install-deps.sh
if ! command -v tinyproxy >/dev/null; then
  if [ "$(id -u)" != 0 ]; then echo "tests/windows/run.sh: tinyproxy is missing; run as root" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tinyproxy
fi
t1=$(date +%s)

echo "== windows: build (ffi/windows/build.sh: release DLLs x64 and x86, import libraries, mailconnect.exe)"
bash ffi/windows/build.sh
t2=$(date +%s)

echo "== windows: tests under Wine (tests/windows.rs)"
# The Linux side of the tests (emulator, mail stack driver) is built by the workspace's cargo.
MAILCONNECT_REQUIRE_WINDOWS=1 cargo test -q -p mailconnect-tests --test windows -- --test-threads=2
t3=$(date +%s)

echo "== windows: load figures under Wine (informative: Wine is not Windows)"
MAILCONNECT_REQUIRE_WINDOWS=1 cargo test -q -p mailconnect-tests --test windows -- --ignored --nocapture load_figures 2>&1 |
  grep -E '^\|' || true
t4=$(date +%s)

printf 'windows: packages %ss, build %ss, tests %ss, figures %ss (total %ss)\n' \
  "$((t1 - t0))" "$((t2 - t1))" "$((t3 - t2))" "$((t4 - t3))" "$((t4 - t0))"
