#!/bin/bash
# Real mail servers (Dovecot 2.3 + Postfix 3.7) on loopback, with OAuth 2.0 bearer-token login
# (SASL XOAUTH2 / OAUTHBEARER) checked against an RFC 7662 introspection endpoint.
#
#   mailstack.sh up DIR --introspect-url URL [--domain example.test]
#                       [--deny-imap user@dom]... [--deny-pop3 user@dom]... [--deny-smtp user@dom]...
#                       [--passdb lua|oauth2] [--crl-url URL] [--debug]
#   mailstack.sh down DIR
#   mailstack.sh status DIR
#
# DIR must be an absolute path; it is created when missing. Everything the stack writes stays in DIR.
# `up` prints DIR/stack.json on stdout when the stack is ready; see README.md in this directory.
# Needs root (Postfix's master refuses to run otherwise) and the packages from install-deps.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HELPER="$HERE/stackhelper.py"
PROG=mailstack

die() { echo "$PROG: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }
# MAILSTACK_TRACE=1 prints a time stamp per step (to find where start-up time goes).
trace() { [ "${MAILSTACK_TRACE:-0}" = 1 ] && echo "$PROG: $(date +%T.%N | cut -c1-12) $*" >&2; return 0; }

usage() {
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 2 ] || usage
CMD=$1
DIR=$2
shift 2
case "$DIR" in
    /*) ;;
    *) die "DIR must be an absolute path (got '$DIR')" ;;
esac
DIR=${DIR%/}
[ -n "$DIR" ] || die "refusing to use / as DIR"
case "$DIR" in
    *[[:space:]]*|*\"*|*\'*|*\\*|*%*) die "DIR must not contain spaces, quotes, backslashes or %" ;;
esac

DOVE_CONF="$DIR/dovecot/dovecot.conf"
POSTFIX_DIR="$DIR/postfix"
DOVE_PID="$DIR/dovecot/run/master.pid"
POSTFIX_QUEUE="$DIR/postfix-queue"
POSTFIX_DATA="$DIR/postfix-data"
POSTFIX_PID="$POSTFIX_QUEUE/pid/master.pid"

# A daemon's master is re-parented to pid 1; where pid 1 reaps children late (containers, VM init
# shims) the exited master stays a zombie for seconds and `kill -0` still succeeds: zombies count
# as gone.
pid_alive() {
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
    local st
    st=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
read_pid() { [ -f "$1" ] && head -n1 "$1" | tr -dc 0-9 || true; }

stack_procs() { python3 "$HELPER" procs "$DIR"; }

# ------------------------------------------------------------------------------------------- down
do_down() {
    local t0 deadline ppid dpid procs
    t0=$(date +%s.%N)
    # Remember every process of this stack before stopping anything (for the final wait/kill).
    procs=$(stack_procs | awk '{print $1}' | tr '\n' ' ')

    trace "down: postfix"
    # 1. Postfix first (its smtpd processes hold connections to Dovecot's auth service).
    ppid=$(read_pid "$POSTFIX_PID")
    if [ -f "$POSTFIX_DIR/main.cf" ] && pid_alive "$ppid"; then
        postfix -c "$POSTFIX_DIR" stop >>"$DIR/postfix.stdout" 2>&1 </dev/null || kill -TERM "$ppid" 2>/dev/null || true
        deadline=$(( $(date +%s) + 10 ))
        while pid_alive "$ppid" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.05; done
        pid_alive "$ppid" && { log "postfix master $ppid did not stop; killing"; kill -KILL "$ppid" 2>/dev/null || true; }
    fi

    trace "down: dovecot"
    # 2. Then Dovecot (SIGTERM to the master, which stops all of its children).
    dpid=$(read_pid "$DOVE_PID")
    if pid_alive "$dpid"; then
        kill -TERM "$dpid" 2>/dev/null || true
        deadline=$(( $(date +%s) + 10 ))
        while pid_alive "$dpid" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.05; done
        pid_alive "$dpid" && { log "dovecot master $dpid did not stop; killing"; kill -KILL "$dpid" 2>/dev/null || true; }
    fi

    trace "down: wait for processes"
    # 3. Wait for every remembered process (and any other process of this stack) to be gone.
    deadline=$(( $(date +%s) + 10 ))
    while :; do
        local left="" p more
        for p in $procs; do pid_alive "$p" && left="$left $p"; done
        more=$(stack_procs | awk '{print $1}' | tr '\n' ' ')
        left=$(echo $left $more)
        [ -z "$left" ] && break
        if [ "$(date +%s)" -ge "$deadline" ]; then
            # Kill only what still identifies as this stack's (a remembered pid may be reused).
            if [ -n "$(echo $more)" ]; then
                log "killing leftover processes: $more"
                kill -KILL $more 2>/dev/null || true
                sleep 0.2
            fi
            break
        fi
        sleep 0.05
    done

    trace "down: wait for ports"
    # 4. Wait until the ports are closed.
    if [ -f "$DIR/stack.json" ]; then
        python3 - "$DIR/stack.json" <<'PY' || log "some ports still accept connections"
import json, socket, sys, time
st = json.load(open(sys.argv[1]))
keys = [k for k, v in st.items() if isinstance(v, int)]
deadline = time.monotonic() + 5
while True:
    open_ = []
    for k in keys:
        host = st.get("strict_host", st["host"]) if k.endswith("_strict") else st["host"]
        s = socket.socket(); s.settimeout(0.2)
        try:
            s.connect((host, st[k])); open_.append(k)
        except OSError:
            pass
        finally:
            s.close()
    if not open_:
        sys.exit(0)
    if time.monotonic() > deadline:
        print("still open: %s" % open_, file=sys.stderr); sys.exit(1)
    time.sleep(0.05)
PY
    fi
    rm -f "$DOVE_PID" "$POSTFIX_PID"
    echo "$(date -u +%FT%TZ) down in $(python3 -c "import sys;print('%.2f'%(float(sys.argv[2])-float(sys.argv[1])))" "$t0" "$(date +%s.%N)") s" >>"$DIR/timings.log" 2>/dev/null || true
    log "stopped ($DIR)"
}

# ----------------------------------------------------------------------------------------- status
do_status() {
    local dpid ppid procs n drun=no prun=no
    dpid=$(read_pid "$DOVE_PID")
    ppid=$(read_pid "$POSTFIX_PID")
    pid_alive "$dpid" && drun=yes
    pid_alive "$ppid" && prun=yes
    procs=$(stack_procs)
    n=$(printf '%s' "$procs" | grep -c . || true)
    echo "dir: $DIR"
    echo "dovecot: $([ $drun = yes ] && echo "running (master pid $dpid)" || echo stopped)"
    echo "postfix: $([ $prun = yes ] && echo "running (master pid $ppid)" || echo stopped)"
    echo "processes: $n"
    [ -n "$procs" ] && printf '%s\n' "$procs" | sed 's/^/  /'
    [ -f "$DIR/stack.json" ] && [ $drun = yes ] && echo "stack.json: $(cat "$DIR/stack.json")"
    if [ $drun = yes ] && [ $prun = yes ]; then return 0; fi
    if [ "$n" -eq 0 ]; then return 3; fi
    return 1
}

# --------------------------------------------------------------------------------------------- up
gen_tls() {
    local d="$DIR/tls"
    mkdir -p "$d"
    (
        cd "$d"
        openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
        openssl req -x509 -new -key ca.key -sha256 -days 30 -subj "/CN=mailconnect throw-away test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -addext "subjectKeyIdentifier=hash" -out ca.pem 2>/dev/null
        openssl ecparam -name prime256v1 -genkey -noout -out server.key 2>/dev/null
        openssl req -new -key server.key -subj "/CN=localhost" -out server.csr 2>/dev/null
        cat >server.ext <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:127.0.0.2
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
        # --crl-url: the certificate names where its CA's (empty) CRL is published, as certificates
        # from real CAs do, and tls/ca.crl (DER) is that CRL, for the caller to serve there:
        # verifiers that insist on a revocation answer (Wine's crypt32) can then give one.
        if [ -n "$CRL_URL" ]; then
            echo "crlDistributionPoints = URI:$CRL_URL" >>server.ext
            printf '[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n' >ca.cnf
            : >index.txt
            echo 01 >crlnumber
            openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -out crl.pem 2>/dev/null
            openssl crl -in crl.pem -outform DER -out ca.crl 2>/dev/null
            chmod 0644 ca.crl
        fi
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
            -days 30 -sha256 -extfile server.ext -out server.pem 2>/dev/null
        cat server.pem ca.pem >server-chain.pem
        chmod 0644 ca.pem server.pem server-chain.pem
        chmod 0600 ca.key server.key
    ) || die "openssl failed"
    cp "$d/ca.pem" "$DIR/ca.pem"
}

write_deny_files() {
    local d="$DIR/dovecot/deny" svc u
    mkdir -p "$d"
    : >"$d/imap"; : >"$d/pop3"; : >"$d/smtp"; : >"$d/submission"
    for u in "${DENY_IMAP[@]+"${DENY_IMAP[@]}"}"; do echo "$u:::::::" >>"$d/imap"; done
    for u in "${DENY_POP3[@]+"${DENY_POP3[@]}"}"; do echo "$u:::::::" >>"$d/pop3"; done
    for u in "${DENY_SMTP[@]+"${DENY_SMTP[@]}"}"; do echo "$u:::::::" >>"$d/smtp"; echo "$u:::::::" >>"$d/submission"; done
    chmod 0755 "$d"
    chmod 0644 "$d"/*
}

write_lua() {
    # The introspection request of the Lua passdb: GET URL?token=..&user=<login user>&service=<imap|pop3|smtp>.
    # GET, not POST: Dovecot's Lua HTTP client sends "Expect: 100-continue" with a body and then
    # waits about 2 s for a server that does not answer 100 (Python's http.server does not).
    local sep='?'
    case "$INTROSPECT_URL" in *\?*) sep='&' ;; esac
    python3 - "$HERE/introspect.lua" "$DIR/dovecot/introspect.lua" "$INTROSPECT_URL$sep" <<'PY'
import sys
src, dst, url = sys.argv[1:4]
text = open(src).read().replace("@@URL@@", url)
open(dst, "w").write(text)
PY
    chmod 0644 "$DIR/dovecot/introspect.lua"
}

write_dovecot_conf() {
    local dh=""
    [ -r /usr/share/dovecot/dh.pem ] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
    local debug="no"
    [ "$DEBUG" = 1 ] && debug="yes"
    cat >"$DIR/dovecot/oauth2.conf.ext" <<EOF
# Used only with --passdb oauth2: Dovecot's own introspection, POST body
# "token=<token>&client_id=&client_secret=" (no login user; see README.md).
# MAILSTACK_SEND_AUTH_HEADERS=yes adds X-Dovecot-Auth-Service/-Local/-Remote headers.
introspection_mode = post
introspection_url = $INTROSPECT_URL_DOVECOT
force_introspection = yes
username_attribute = username
username_format = %Lu
active_attribute = active
active_value = true
send_auth_headers = $SEND_AUTH_HEADERS
timeout_msecs = 5000
debug = $debug
EOF
    if [ "$PASSDB" = lua ]; then
        write_lua
        TOKEN_PASSDB="passdb {
  driver = lua
  mechanisms = xoauth2 oauthbearer
  args = file=$DIR/dovecot/introspect.lua blocking=yes
}"
    else
        TOKEN_PASSDB="passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $DIR/dovecot/oauth2.conf.ext
}"
    fi
    cat >"$DOVE_CONF" <<EOF
# Generated by sandbox/stack/mailstack.sh -- a private Dovecot instance for tests.
instance_name = $INSTANCE
base_dir = $DIR/dovecot/run
state_dir = $DIR/dovecot/state
log_path = $DIR/dovecot.log
info_log_path = $DIR/dovecot.log
debug_log_path = $DIR/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
hostname = localhost
shutdown_clients = yes

ssl = yes
ssl_cert = <$DIR/tls/server-chain.pem
ssl_key = <$DIR/tls/server.key
ssl_min_protocol = TLSv1.2
$dh

auth_mechanisms = xoauth2 oauthbearer
disable_plaintext_auth = yes
auth_failure_delay = 0
auth_cache_size = 0
auth_verbose = yes
auth_debug = $debug
auth_username_format = %Lu
login_trusted_networks =
verbose_proctitle = yes

mail_location = maildir:$DIR/mail/%d/%n/Maildir
mail_privileged_group =
first_valid_uid = 1
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = create
  }
  mailbox Trash {
    special_use = \\Trash
    auto = create
  }
  # Outlook's Junk Email and Archive (Graph's well-known junkemail and archive).
  mailbox Junk {
    special_use = \\Junk
    auto = create
  }
  mailbox Archive {
    special_use = \\Archive
    auto = create
  }
}

# Per-protocol deny lists (--deny-imap/--deny-pop3/--deny-smtp): %s is the service name
# (imap, pop3; Postfix SASL requests arrive as service "smtp").
passdb {
  driver = passwd-file
  args = $DIR/dovecot/deny/%s
  deny = yes
}
$TOKEN_PASSDB
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$DIR/mail/%d/%n allow_all_users=yes
}

service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $P_IMAP
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $P_IMAPS
    ssl = yes
  }
  inet_listener imap_strict {
    address = 127.0.0.2
    port = $P_IMAP_STRICT
  }
  service_count = 0
  process_min_avail = 1
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $P_POP3
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $P_POP3S
    ssl = yes
  }
  inet_listener pop3_strict {
    address = 127.0.0.2
    port = $P_POP3_STRICT
  }
  service_count = 0
  process_min_avail = 1
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $P_LMTP
  }
}
service auth-worker {
  process_min_avail = 2
}
service auth {
  inet_listener auth-postfix {
    address = 127.0.0.1
    port = $P_AUTH
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0600
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
protocol lmtp {
  postmaster_address = postmaster@$DOMAIN
}
protocol pop3 {
  pop3_uidl_format = %08Xu%08Xv
}
EOF
}

write_postfix_conf() {
    # queue and data directories must not live inside the config directory: "postfix check"
    # walks the config directory and complains about (and chokes on) postfix-owned files there.
    local q="$POSTFIX_QUEUE"
    mkdir -p "$q" "$POSTFIX_DATA"
    chown root:root "$q"
    chown postfix:postfix "$POSTFIX_DATA"
    chmod 0755 "$q" "$POSTFIX_DATA"
    cat >"$POSTFIX_DIR/main.cf" <<EOF
# Generated by sandbox/stack/mailstack.sh -- a private Postfix instance for tests.
compatibility_level = 3.6
queue_directory = $q
data_directory = $POSTFIX_DATA
mail_owner = postfix
setgid_group = postdrop
maillog_file = $DIR/postfix.log
maillog_file_prefixes = $DIR
syslog_name = postfix-$INSTANCE
myhostname = localhost
mydomain = localdomain
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
smtputf8_enable = yes
smtpd_banner = \$myhostname ESMTP mailconnect test stack
# Exchange Online announces SIZE 157286400 (150 MB); Postfix's default (10 MB) would refuse a
# 10 MB attachment once base64-encoded. Graph enforces the mailbox limit (35 MB) itself.
message_size_limit = 157286400
mailbox_size_limit = 0
virtual_mailbox_limit = 0
service_throttle_time = 1s
in_flow_delay = 0
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 30s

virtual_mailbox_domains = $DOMAIN
virtual_transport = lmtp:inet:127.0.0.1:$P_LMTP

smtpd_tls_cert_file = $DIR/tls/server-chain.pem
smtpd_tls_key_file = $DIR/tls/server.key
smtpd_tls_security_level = may
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_loglevel = 0
smtpd_tls_received_header = yes
smtpd_tls_auth_only = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:$P_AUTH
smtpd_sasl_auth_enable = no
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
smtpd_sasl_authenticated_header = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions =
EOF
    local sub="-o smtpd_sasl_auth_enable=yes -o smtpd_tls_auth_only=yes -o smtpd_client_restrictions=permit_sasl_authenticated,reject -o smtpd_relay_restrictions=permit_sasl_authenticated,reject -o syslog_name=postfix-$INSTANCE/\$service_name"
    cat >"$POSTFIX_DIR/master.cf" <<EOF
# Generated by sandbox/stack/mailstack.sh
127.0.0.1:$P_SUBMISSION inet n - n - - smtpd -o smtpd_tls_security_level=encrypt $sub
127.0.0.1:$P_SMTPS inet n - n - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt $sub
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    # Postfix start-up takes about 2 s longer when main.cf was modified within the last second or
    # two (measured: 2.1 s vs 0.3 s); back-date the freshly written files.
    touch -d '-1 min' "$POSTFIX_DIR/main.cf" "$POSTFIX_DIR/master.cf"
}

write_json() {
    python3 - "$DIR" "$DOMAIN" "$INTROSPECT_URL" <<PY
import json, sys
d, domain, url = sys.argv[1], sys.argv[2], sys.argv[3]
st = {
    "imap_tls": $P_IMAPS, "imap_starttls": $P_IMAP,
    "pop3_tls": $P_POP3S, "pop3_starttls": $P_POP3,
    "smtp_starttls": $P_SUBMISSION, "smtp_tls": $P_SMTPS,
    "lmtp": $P_LMTP, "auth": $P_AUTH,
    "imap_starttls_strict": $P_IMAP_STRICT, "pop3_starttls_strict": $P_POP3_STRICT,
    "host": "127.0.0.1", "strict_host": "127.0.0.2",
    "domain": domain,
    "ca_pem": d + "/ca.pem",
    "maildir_root": d + "/mail",
    "maildir_format": d + "/mail/{domain}/{localpart}/Maildir",
    "dovecot_log": d + "/dovecot.log",
    "postfix_log": d + "/postfix.log",
    "introspect_url": url,
    "tls_cert": d + "/tls/server-chain.pem",
    "tls_key": d + "/tls/server.key",
    "passdb": "$PASSDB",
}
tmp = d + "/stack.json.tmp"
with open(tmp, "w") as f:
    json.dump(st, f, indent=1)
    f.write("\n")
import os
os.replace(tmp, d + "/stack.json")
PY
}

log_has_bind_error() {
    grep -qiE 'address already in use|bind\(.*\) failed|cannot bind|Address in use' "$@" 2>/dev/null
}

do_up() {
    INTROSPECT_URL=""
    DOMAIN="example.test"
    DEBUG=0
    PASSDB=lua
    SEND_AUTH_HEADERS=${MAILSTACK_SEND_AUTH_HEADERS:-no}
    DENY_IMAP=(); DENY_POP3=(); DENY_SMTP=()
    CRL_URL=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --introspect-url) INTROSPECT_URL=${2:?}; shift 2 ;;
            --introspect-url=*) INTROSPECT_URL=${1#*=}; shift ;;
            --domain) DOMAIN=${2:?}; shift 2 ;;
            --domain=*) DOMAIN=${1#*=}; shift ;;
            --deny-imap) DENY_IMAP+=("${2:?}"); shift 2 ;;
            --deny-pop3) DENY_POP3+=("${2:?}"); shift 2 ;;
            --deny-smtp) DENY_SMTP+=("${2:?}"); shift 2 ;;
            --debug) DEBUG=1; shift ;;
            --passdb) PASSDB=${2:?}; shift 2 ;;
            --passdb=*) PASSDB=${1#*=}; shift ;;
            --crl-url) CRL_URL=${2:?}; shift 2 ;;
            --crl-url=*) CRL_URL=${1#*=}; shift ;;
            *) die "unknown option '$1'" ;;
        esac
    done
    [ -n "$INTROSPECT_URL" ] || die "--introspect-url URL is required"
    case "$PASSDB" in lua|oauth2) ;; *) die "--passdb must be lua or oauth2" ;; esac
    case "$INTROSPECT_URL" in
        *%*|*\|*) die "--introspect-url must not contain '%' or '|' (Dovecot 2.3.19 does not expand %u there and its auth process panics on such a URL; the login user is sent as the 'user' parameter instead)" ;;
    esac
    case "$INTROSPECT_URL" in http://*|https://*) ;; *) die "--introspect-url must be an http(s) URL" ;; esac
    [ "$(id -u)" = 0 ] || die "must run as root (Postfix's master refuses to run otherwise)"
    for b in dovecot postfix openssl python3; do
        command -v "$b" >/dev/null || die "$b not found: run $HERE/install-deps.sh first"
    done
    INTROSPECT_URL_DOVECOT=$INTROSPECT_URL

    local t0 t_up
    t0=$(date +%s.%N)
    mkdir -p "$DIR"
    if [ -f "$DIR/dovecot/run/master.pid" ] || [ -f "$POSTFIX_PID" ]; then
        if pid_alive "$(read_pid "$DOVE_PID")" || pid_alive "$(read_pid "$POSTFIX_PID")"; then
            die "a stack is already running in $DIR (run: $0 down $DIR)"
        fi
    fi
    # Mail processes run as nobody and must reach DIR/mail; the auth process (user dovecot) reads
    # DIR/dovecot/*.
    chmod 0755 "$DIR"
    if ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$DIR" 2>/dev/null; then
        # Typically DIR sits in a fresh 0700 temporary directory (mktemp -d, Rust tempfile): add
        # only the search bit (o+x, no listing) to such ancestors that we own.
        local a="$DIR"
        while a=$(dirname "$a"); [ "$a" != / ]; do
            if [ -O "$a" ] && ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$a" 2>/dev/null; then
                chmod o+x "$a" && log "note: chmod o+x $a (the mail processes run as nobody and must reach $DIR)"
            fi
        done
        setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$DIR" 2>/dev/null ||
            die "user nobody cannot reach $DIR (a parent directory is not searchable by others); chmod o+x its parents or use a DIR under /tmp"
    fi
    INSTANCE="mc-$(printf '%s' "$DIR" | md5sum | cut -c1-10)"
    rm -rf "$DIR/dovecot/run" "$POSTFIX_QUEUE/pid" "$DIR/stack.json"
    mkdir -p "$DIR/dovecot/run" "$DIR/dovecot/state" "$DIR/mail" "$POSTFIX_DIR"
    echo "$INSTANCE" >"$DIR/dovecot/instance"
    chown nobody:nogroup "$DIR/mail"
    chmod 0755 "$DIR/dovecot" "$DIR/mail"
    : >>"$DIR/dovecot.log"; : >>"$DIR/postfix.log"
    trace "gen_tls"
    gen_tls
    write_deny_files

    local attempt ok=0
    for attempt in 1 2 3 4 5; do
        read -r P_IMAP P_IMAPS P_POP3 P_POP3S P_LMTP P_AUTH P_SUBMISSION P_SMTPS P_IMAP_STRICT P_POP3_STRICT \
            < <(python3 "$HELPER" ports 10)
        write_dovecot_conf
        write_postfix_conf
        write_json
        local dlog_before plog_before
        dlog_before=$(wc -c <"$DIR/dovecot.log")
        plog_before=$(wc -c <"$DIR/postfix.log")
        trace "start dovecot"
        # Dovecot keeps the caller's stdout/stderr open unless they are redirected.
        if ! dovecot -c "$DOVE_CONF" >>"$DIR/dovecot.stdout" 2>&1 </dev/null; then
            if tail -c +$((dlog_before + 1)) "$DIR/dovecot.log" | log_has_bind_error - || log_has_bind_error "$DIR/dovecot.stdout"; then
                log "port taken, retrying with new ports"; continue
            fi
            cat "$DIR/dovecot.stdout" >&2; tail -n 20 "$DIR/dovecot.log" >&2
            die "dovecot failed to start (see $DIR/dovecot.log)"
        fi
        trace "start postfix"
        if ! postfix -c "$POSTFIX_DIR" start >>"$DIR/postfix.stdout" 2>&1 </dev/null; then
            if tail -c +$((plog_before + 1)) "$DIR/postfix.log" | log_has_bind_error -; then
                log "port taken, retrying with new ports"; do_down >/dev/null 2>&1; continue
            fi
            tail -n 20 "$DIR/postfix.log" >&2
            do_down >/dev/null 2>&1 || true
            die "postfix failed to start (see $DIR/postfix.log)"
        fi
        trace "wait for ports"
        if python3 "$HELPER" wait "$DIR/stack.json" 20; then
            ok=1; break
        fi
        if tail -c +$((dlog_before + 1)) "$DIR/dovecot.log" | log_has_bind_error - ||
           tail -c +$((plog_before + 1)) "$DIR/postfix.log" | log_has_bind_error -; then
            log "port taken, retrying with new ports"; do_down >/dev/null 2>&1; continue
        fi
        tail -n 20 "$DIR/dovecot.log" "$DIR/postfix.log" >&2
        do_down >/dev/null 2>&1 || true
        die "stack did not become ready"
    done
    [ "$ok" = 1 ] || die "could not find free ports after 5 attempts"
    t_up=$(python3 -c "import sys;print('%.2f'%(float(sys.argv[2])-float(sys.argv[1])))" "$t0" "$(date +%s.%N)")
    echo "$(date -u +%FT%TZ) up in $t_up s" >>"$DIR/timings.log"
    log "ready in ${t_up}s ($DIR/stack.json)"
    cat "$DIR/stack.json"
}

case "$CMD" in
    up) do_up "$@" ;;
    down) [ $# -eq 0 ] || usage; do_down ;;
    status) [ $# -eq 0 ] || usage; do_status ;;
    *) usage ;;
esac
