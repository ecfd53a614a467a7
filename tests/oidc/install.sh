#!/bin/sh
# Installs the independent OpenID Connect server of the interoperability tests (oidc-provider from
# npm, the version pinned in package-lock.json) into tests/oidc/node_modules. Needs node and npm.
set -eu
cd "$(dirname "$0")"
command -v node >/dev/null && command -v npm >/dev/null || { echo "tests/oidc/install.sh: node and npm are needed" >&2; exit 1; }
if [ ! -d node_modules/oidc-provider ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
