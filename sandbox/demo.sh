#!/usr/bin/env bash
# The README's main command. On a fresh Debian machine, as root:
#
#     bash sandbox/demo.sh
#
# 1. installs what the sandbox needs (Dovecot, Postfix, ...: sandbox/stack/install-deps.sh),
# 2. builds the C library (libmailconnect.so), the mailconnect command and the sandbox,
# 3. runs `mailconnect demo`: brings the sandbox up (the identity-platform emulator and real
#    Dovecot/Postfix on loopback), runs the whole story through the C ABI with the libloading
#    harness (register an app, add an `auto` account, connect by device code, test, send to itself,
#    fetch over IMAP and POP3, status; the tenant switches SMTP AUTH off and `auto` falls back to
#    Microsoft Graph after one 535 5.7.139 refusal and remembers it; a dying refresh token with its
#    diagnostic in English and German, disconnect) and brings the sandbox down again,
# and prints how long step 3 took.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n######## %s\n' "$*"; }
fail() { printf 'demo: %s\n' "$*" >&2; exit 1; }
root=no
[ "$(id -u)" = 0 ] && root=yes

say "1/3 System packages for the sandbox's mail servers (sandbox/stack/install-deps.sh)"
if ! sh sandbox/stack/install-deps.sh; then
    [ "$root" = yes ] || fail "the packages above are missing and only root can install them: run  sudo bash sandbox/demo.sh"
    fail "installing the packages failed (see above)"
fi
[ "$root" = yes ] || fail "the real mail servers need root (Postfix refuses to run as another user): run  sudo bash sandbox/demo.sh"
if ! command -v cc >/dev/null; then
    echo "demo: installing a C compiler (gcc) for the crates that build C code"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc libc6-dev
fi
command -v cargo >/dev/null || fail "cargo is missing: install Rust 1.89 or newer with rustup (https://rustup.rs), then run this again"

say "2/3 Build the C library, the mailconnect command and the sandbox (cargo build)"
cargo build -p mailconnect-ffi -p mailconnect-cli -p mailconnect-sandbox
out="${CARGO_TARGET_DIR:-target}/debug"

say "3/3 The demo (timed): $out/mailconnect demo --lib $out/libmailconnect.so"
start=$(date +%s%N)
status=0
"$out/mailconnect" demo --lib "$out/libmailconnect.so" || status=$?
end=$(date +%s%N)
ms=$(( (end - start) / 1000000 ))
printf '\ndemo: %d.%d s after the build (exit code %d)\n' $((ms / 1000)) $(((ms % 1000) / 100)) "$status"
exit "$status"
