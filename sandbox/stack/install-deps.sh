#!/bin/sh
# Install the Debian packages the real mail-server test stack (and the PostgreSQL store tests) need (idempotent).
# Usage: sandbox/stack/install-deps.sh [--browser]   (as root; exits 0 at once when all is installed)
#   --browser: also Chromium and its WebDriver (chromium, chromium-driver) for the sign-in tests in
#   headless Chromium (tests/browser_chromium.rs); tests/run-all.sh passes it, the demo does not
#   (131 MB of packages it does not need).
set -eu

# postgresql: the PostgreSQL store tests run initdb + postgres from /usr/lib/postgresql/*/bin.
# tinyproxy, dante-server: the HTTP CONNECT and SOCKS5 proxies of the proxy tests
# (tests/support/proxies.rs, which also installs them when missing).
PKGS="dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-auth-lua postfix openssl curl python3 ca-certificates postgresql tinyproxy dante-server"
if [ "${1:-}" = "--browser" ]; then
    PKGS="$PKGS chromium chromium-driver"
fi

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing="$missing $p"
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages already installed"
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: run this script as root (or: sudo apt-get install$missing)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string localhost" | debconf-set-selections

# apt-get update only when the package lists are missing or the install fails for lack of them.
if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
    echo "install-deps: apt-get update"
    apt-get update -q
fi
echo "install-deps: installing$missing"
# shellcheck disable=SC2086
if ! apt-get install -y -q --no-install-recommends $missing; then
    echo "install-deps: install failed, retrying after apt-get update"
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi

# The package scripts may have started the system instances where no policy-rc.d forbids it;
# the stack never uses them, but they would hold ports 25/143/993/... Leave them alone otherwise.
for p in $PKGS; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [ "$st" != "installed" ]; then
        echo "install-deps: $p is still not installed" >&2
        exit 1
    fi
done
echo "install-deps: done"
