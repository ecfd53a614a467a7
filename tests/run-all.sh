#!/usr/bin/env bash
# Runs every test of mailconnect: formatting, lints, unit tests, end-to-end tests against the
# sandbox (identity-platform emulator; real Dovecot and Postfix where installed).
# On a fresh Debian machine run it as root once: it installs the system packages it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x sandbox/stack/install-deps.sh ]; then
  sandbox/stack/install-deps.sh
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
