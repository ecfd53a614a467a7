#!/usr/bin/env bash
# The whole test command (tests/run-all.sh) with both CPUs kept busy by stress-ng from Debian, as a
# shared CI machine can be: every test must hold without timing margins. Installs stress-ng.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v stress-ng >/dev/null; then
  if [ "$(id -u)" != 0 ]; then echo "tests/under-load.sh: stress-ng is missing; run as root" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends stress-ng
fi
stress-ng --cpu "${MC_LOAD_CPUS:-2}" --quiet &
load=$!
trap 'kill $load 2>/dev/null || true' EXIT
echo "== under load: stress-ng --cpu ${MC_LOAD_CPUS:-2} (pid $load)"
bash tests/run-all.sh
