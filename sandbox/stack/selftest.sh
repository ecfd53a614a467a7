#!/bin/bash
# Self-test of the mail-server test stack: installs the packages (when missing), starts a tiny
# introspection stub, brings a stack up, checks IMAP/POP3/SMTP logins and delivery, brings it down
# and checks that nothing is left running. One PASS/FAIL line per check; exit status 1 on failure.
#
#   sandbox/stack/selftest.sh [--passdb lua|oauth2] [--keep] [WORKDIR]
#
# WORKDIR (absolute) defaults to a new directory under /tmp; it is removed after a passing run
# unless --keep is given. The exact server replies are written to WORKDIR/replies.txt (and printed).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PASSDB=lua
KEEP=0
WORK=""
while [ $# -gt 0 ]; do
    case "$1" in
        --passdb) PASSDB=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        /*) WORK=$1; shift ;;
        *) echo "usage: $0 [--passdb lua|oauth2] [--keep] [WORKDIR]" >&2; exit 2 ;;
    esac
done

FAILS=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
now() { date +%s.%N; }
secs() { python3 -c "import sys;print('%.2f'%(float(sys.argv[2])-float(sys.argv[1])))" "$1" "$2"; }

T_ALL=$(now)
if "$HERE/install-deps.sh"; then pass "install-deps"; else fail "install-deps"; exit 1; fi

[ -n "$WORK" ] || WORK=$(mktemp -d /tmp/mailstack-selftest.XXXXXX)
mkdir -p "$WORK"
chmod 0755 "$WORK"
STACK="$WORK/stack"
STUB_PID=""
cleanup() {
    [ -n "$STUB_PID" ] && kill "$STUB_PID" 2>/dev/null
    if [ -f "$STACK/stack.json" ]; then "$HERE/mailstack.sh" down "$STACK" >/dev/null 2>&1; fi
}
trap cleanup EXIT

# 1. introspection stub
rm -f "$WORK/stub.port"
python3 "$HERE/introspect_stub.py" "$WORK/stub.port" "$WORK/stub.log" </dev/null >"$WORK/stub.out" 2>&1 &
STUB_PID=$!
for _ in $(seq 100); do [ -s "$WORK/stub.port" ] && break; sleep 0.05; done
if [ -s "$WORK/stub.port" ]; then pass "introspection stub on port $(cat "$WORK/stub.port")"; else fail "introspection stub did not start"; exit 1; fi
URL="http://127.0.0.1:$(cat "$WORK/stub.port")/introspect"

# 2. stack up
T0=$(now)
if "$HERE/mailstack.sh" up "$STACK" --introspect-url "$URL" --passdb "$PASSDB" \
        --deny-pop3 bob@example.test --deny-imap carol@example.test --deny-smtp carol@example.test \
        >"$WORK/up.out" 2>"$WORK/up.err"; then
    T_UP=$(secs "$T0" "$(now)")
    pass "mailstack up (${T_UP} s)"
else
    fail "mailstack up: $(tail -n 5 "$WORK/up.err")"
    exit 1
fi
"$HERE/mailstack.sh" status "$STACK" >/dev/null; rc=$?
[ $rc -eq 0 ] && pass "status reports running" || fail "status exit $rc while running"

# 3. protocol checks
python3 "$HERE/selftest.py" "$STACK/stack.json" "$WORK/stub.log" "$WORK/replies.txt"
rc=$?
[ $rc -eq 0 ] || FAILS=$((FAILS + 1))

# 4. stack down, nothing left
T0=$(now)
if "$HERE/mailstack.sh" down "$STACK" >"$WORK/down.out" 2>"$WORK/down.err"; then
    T_DOWN=$(secs "$T0" "$(now)")
    pass "mailstack down (${T_DOWN} s)"
else
    fail "mailstack down: $(tail -n 5 "$WORK/down.err")"
fi
"$HERE/mailstack.sh" status "$STACK" >"$WORK/status.out" 2>&1; rc=$?
[ $rc -eq 3 ] && pass "status reports stopped" || fail "status exit $rc after down: $(cat "$WORK/status.out")"
LEFT=$(python3 "$HERE/stackhelper.py" procs "$STACK")
[ -z "$LEFT" ] && pass "no stack process left" || fail "processes left: $LEFT"
LEFT2=$(ps -eo pid=,args= | grep -F "$STACK" | grep -v grep || true)
[ -z "$LEFT2" ] && pass "no process mentions $STACK" || fail "processes left: $LEFT2"
if python3 - "$STACK/stack.json" <<'PY'
import json, socket, sys
st = json.load(open(sys.argv[1]))
bad = []
for k, v in st.items():
    if isinstance(v, int):
        host = st["strict_host"] if k.endswith("_strict") else st["host"]
        s = socket.socket(); s.settimeout(0.5)
        try:
            s.connect((host, v)); bad.append(k)
        except OSError:
            pass
        s.close()
sys.exit(1 if bad else 0)
PY
then pass "all stack ports closed"; else fail "some stack ports still open"; fi
kill "$STUB_PID" 2>/dev/null; wait "$STUB_PID" 2>/dev/null; STUB_PID=""

echo
echo "---- replies observed ($WORK/replies.txt) ----"
cat "$WORK/replies.txt" 2>/dev/null
echo "---- introspection stub log (first 6 lines) ----"
head -n 6 "$WORK/stub.log" 2>/dev/null
echo
echo "timings: up ${T_UP:-?} s, down ${T_DOWN:-?} s, whole selftest $(secs "$T_ALL" "$(now)") s"
if [ "$FAILS" -eq 0 ]; then
    echo "SELFTEST PASS"
    [ "$KEEP" = 1 ] || rm -rf "$WORK"
    exit 0
fi
echo "SELFTEST FAIL ($FAILS failing step(s)); logs kept in $WORK"
exit 1
