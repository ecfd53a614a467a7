#!/bin/sh
# Installs Microsoft's MSAL for Python from PyPI into tests/msal/site (for tests/msal_interop.rs:
# MSAL against the sandbox emulator). Idempotent.
set -eu
cd "$(dirname "$0")"
if [ ! -d site/msal ]; then
  python3 -m pip install --quiet --disable-pip-version-check --target site "msal==1.39.0"
fi
