#!/usr/bin/env bash
# The package part of the test command (tests/run-all.sh runs it after the Windows part, so the
# Windows DLLs are there to package): ffi/dist/dist.sh writes the release packages to
# target/packages, then tests/packages.rs installs them the way each ecosystem does (make install
# + pkg-config, pip into a fresh venv, the Windows zips' contents and import libraries) and
# tests/packages_nuget.rs restores the NuGet package offline into a fresh project.
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
out=${MAILCONNECT_DIST:-$PWD/target/packages}
bash ffi/dist/dist.sh "$out"
t1=$(date +%s)
windows=0
[ -f target/windows/x64/mailconnect.dll ] && [ -f target/windows/x86/mailconnect.dll ] && windows=1
cargo build -q -p mailconnect-ffi -p mailconnect-cli -p mailconnect-sandbox
MAILCONNECT_DIST="$out" MAILCONNECT_REQUIRE_PACKAGES=1 MAILCONNECT_REQUIRE_WINDOWS_PACKAGES=$windows \
    cargo test -q -p mailconnect-tests --test packages --test packages_nuget -- --test-threads=2
t2=$(date +%s)
printf 'packages: dist %ss, install tests %ss\n' "$((t1 - t0))" "$((t2 - t1))"
