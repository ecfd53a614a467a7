#!/usr/bin/env bash
# Runs every test of mailconnect: formatting, lints, unit tests, end-to-end tests against the
# sandbox (identity-platform emulator; real Dovecot and Postfix where installed).
# On a fresh Debian machine run it as root once: it installs the system packages it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== system packages (Dovecot, Postfix, curl, python3, Chromium and chromedriver; installed when missing, as root)"
sh sandbox/stack/install-deps.sh --browser
echo "== binding toolchains (Mono, .NET 8 runtime, Free Pascal, pytest)"
sh bindings/install-deps.sh
echo "== the independent OpenID Connect server of the interop tests (oidc-provider from npm)"
sh tests/oidc/install.sh
echo "== Microsoft's MSAL for Python (PyPI), for the emulator's interop test"
sh tests/msal/install.sh
for tool in gcc g++ make cargo python3 curl mcs mono fpc node npm; do
  command -v "$tool" >/dev/null || { echo "run-all: '$tool' is missing" >&2; exit 1; }
done

echo "== dependency hygiene: one TLS stack (rustls on ring), no second copies of the core crates"
dups=$(cargo tree --workspace -d -e normal 2>/dev/null | grep -E "^(rustls|reqwest|hyper|tokio|ring) v" || true)
if [ -n "$dups" ]; then echo "duplicate core crates:"; echo "$dups"; exit 1; fi
for forbidden in aws-lc-rs openssl-sys native-tls; do
  if cargo tree --workspace -i "$forbidden" >/dev/null 2>&1; then echo "forbidden dependency in the tree: $forbidden"; exit 1; fi
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p mailconnect-ffi --features cxx --target-dir target/cxx --all-targets -- -D warnings
echo "== cargo test"
# The binding tests load the cdylib and run the mailconnect and mc-emulator binaries.
cargo build -q -p mailconnect-ffi -p mailconnect-cli -p mailconnect-sandbox
# The sign-in in headless Chromium (tests/browser_chromium.rs) fails instead of skipping here.
MAILCONNECT_REQUIRE_BROWSER=1 cargo test --workspace --no-fail-fast

echo "== bindings: Python (ctypes) against the sandbox and the real mail stack"
cargo build -q -p mailconnect-ffi -p mailconnect-cli -p mailconnect-sandbox
python3 -m pytest --version >/dev/null 2>&1 || python3 -m pip install -q pytest
pytarget=$(mktemp -d)
python3 -m pip install -q --target "$pytarget" ./bindings/python
MAILCONNECT_LIB="$PWD/target/debug/libmailconnect.so" PYTHONPATH="$pytarget" python3 -c "import mailconnect; print('pip-installed binding loads library', mailconnect.VERSION)"
rm -rf "$pytarget"
PYTHONPATH=bindings/python python3 -m pytest -q bindings/python/tests

# Windows (issue 13): mailconnect.dll (x64, x86), its import libraries and mailconnect.exe built
# here with MinGW and Debian's Rust (-Zbuild-std), then C hosts and mailconnect.exe under Wine 8
# against the sandbox (tests/windows.rs). Installs its packages; the build cache is kept in
# ~/.cache/mailconnect/windows, so a second run rebuilds only what changed.
echo "== Windows: build and tests under Wine (tests/windows/run.sh)"
bash tests/windows/run.sh

# Release packages (issue 19.2): ffi/dist/dist.sh builds the Linux tarball (soname, static library,
# pkg-config, make install), the Windows zips, the NuGet package and the Python wheels into
# target/packages; then each is installed the way its ecosystem installs it and runs the scenario
# (tests/packages.rs, tests/packages_nuget.rs). After the Windows part, whose DLLs it packages.
echo "== release packages: build and install tests (tests/packages/run.sh)"
bash tests/packages/run.sh

# Fuzzing (issue 8, hostile input): every cargo-fuzz target in tests/fuzz (token and error
# responses, id_token claims, the loopback redirect, POP3 and SMTP server replies, SASL challenges,
# account/options JSON, CSV import) for FUZZ_SECONDS each (default 20), two at a time, after one
# instrumented build (installs cargo-fuzz when missing; stable Rust via RUSTC_BOOTSTRAP=1). About
# 2.5 minutes of fuzzing plus 3-4 minutes of build on a fresh 2-core machine, less when the build
# cache in ~/.cache/mailconnect is warm. Prints executions per target; fails on any crash or hang.
echo "== fuzzing: tests/fuzz/run.sh (${FUZZ_SECONDS:-20} s per target)"
FUZZ_NO_RECORD=1 bash tests/fuzz/run.sh

# The README's main command, exactly as a person types it (packages and build are already done by
# now, so this is the demo itself: sandbox up, the story through the C ABI, sandbox down).
echo "== README main command: bash sandbox/demo.sh"
bash sandbox/demo.sh
