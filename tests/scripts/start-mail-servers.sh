#!/usr/bin/env bash
# Start a throw-away Dovecot (IMAP/IMAPS/LMTP) + Postfix (SMTP/SMTPS, AUTH via
# Dovecot SASL, delivery via LMTP) on 127.0.0.1, all state under STATE_DIR.
# No systemd needed. Run as root (Postfix master must be root).
#
# usage: start-mail-servers.sh STATE_DIR
#
# supportmail's own copy of /work/shared/testing/mail-servers/start-mail-servers.sh.
# Differences: a larger default user list (MAIL_USERS, extend with MAIL_EXTRA_USERS,
# a bare name gets the password "<name>-pw"), per-recipient test replies at RCPT
# (RCPT_ACCESS; by default tempfail@DOMAIN gets "451 4.3.0 Temporary failure (test)"),
# a stale state dir from a killed run (dead PIDs) is reused cleanly, and the env
# file is written atomically (removed first, so a failed start leaves none).
# Installs nothing: dies with a clear message when a binary is missing.
#
# Environment overrides (defaults in brackets):
#   IMAP_PORT [10143]  IMAPS_PORT [10993]  SMTP_PORT [10025]  SMTPS_PORT [10465]
#   MAIL_DOMAIN [example.test]
#   MAIL_USERS [support alice bob carol dave erin frank grace heidi ivan judy mallory tempfail ops]
#              space separated "user:password" or "user" (password "user-pw");
#              no ':' or whitespace in passwords
#   MAIL_EXTRA_USERS [] appended to MAIL_USERS (same syntax): the easy way to add users
#   RCPT_ACCESS ["tempfail@DOMAIN 451 4.3.0 Temporary failure (test)"]  lines of a
#              Postfix access table (check_recipient_access), separated by ';'
#   SMTP_REQUIRE_AUTH [1]  1 = RCPT rejected unless AUTH done; 0 = loopback may send unauthenticated
#   MAIL_UID/MAIL_GID [uid/gid of "nobody"/"nogroup"]  owner of the Maildirs (never 0)
#   READY_TIMEOUT [20]  seconds to wait for the listeners
#   AUTH_VERBOSE [no]   yes = log every auth attempt in logs/dovecot.log
#   MAIL_TIMING         set to 1 to print phase timings to stderr
# STATE_DIR: short path (unix sockets < 108 bytes), no spaces, '|' or '&'.
#
# On success prints shell assignments (also written to STATE_DIR/mail-servers.env)
# and exits 0. On failure prints the log tails, stops what it started, exits 1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONF_SRC="$HERE/conf"

STATE=${1:?usage: $0 STATE_DIR}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)

IMAP_PORT=${IMAP_PORT:-10143}
IMAPS_PORT=${IMAPS_PORT:-10993}
SMTP_PORT=${SMTP_PORT:-10025}
SMTPS_PORT=${SMTPS_PORT:-10465}
MAIL_DOMAIN=${MAIL_DOMAIN:-example.test}
DEFAULT_USERS="support alice bob carol dave erin frank grace heidi ivan judy mallory tempfail ops"
MAIL_USERS="${MAIL_USERS:-$DEFAULT_USERS} ${MAIL_EXTRA_USERS:-}"
RCPT_ACCESS=${RCPT_ACCESS:-"tempfail@$MAIL_DOMAIN 451 4.3.0 Temporary failure (test)"}
SMTP_REQUIRE_AUTH=${SMTP_REQUIRE_AUTH:-1}
READY_TIMEOUT=${READY_TIMEOUT:-20}
AUTH_VERBOSE=${AUTH_VERBOSE:-no}

die() { echo "start-mail-servers: $*" >&2; exit 1; }
# alive = exists and is not a zombie (PID 1 in containers may reap late)
alive() { local l; [ -n "$1" ] && { read -r l < "/proc/$1/stat"; } 2>/dev/null || return 1; l=${l##*) }; [ "${l%% *}" != Z ]; }
T0=$EPOCHREALTIME
tick() { [ -z "${MAIL_TIMING:-}" ] || echo "[+$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.3f", b-a}')s] $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (Postfix master needs root)"
for b in dovecot doveconf postfix postconf openssl install cksum awk sed; do
  command -v "$b" >/dev/null || die "missing '$b' (Debian: apt-get install dovecot-imapd dovecot-lmtpd postfix openssl); this script installs nothing"
done
PF_MASTER="$(postconf -dh daemon_directory)/master"
[ -x "$PF_MASTER" ] || die "missing $PF_MASTER (package postfix)"
getent passwd postfix dovecot dovenull >/dev/null || die "system users postfix/dovecot/dovenull missing (created by the Debian packages)"

if [ -z "${MAIL_UID:-}" ]; then MAIL_UID=$(id -u nobody); fi
if [ -z "${MAIL_GID:-}" ]; then MAIL_GID=$(getent group nogroup | cut -d: -f3); fi
[ "$MAIL_UID" -ne 0 ] || die "MAIL_UID must not be 0 (Dovecot refuses mail access as root)"

# ---- refuse to double-start / port clashes ----
# PIDs of an earlier run: from the env file and from the pid files (a run killed
# before it wrote the env file still left those). Dead ones (stale state dir of a
# killed run) are fine; live ones mean the servers are still up for this dir.
pid_of() { [ -s "$1" ] && tr -d ' \n' < "$1" 2>/dev/null || true; }
old_pids="$(pid_of "$STATE/dovecot/run/master.pid") $(pid_of "$STATE/postfix-spool/pid/master.pid")"
if [ -f "$STATE/mail-servers.env" ]; then
  old_pids="$old_pids $(sed -n 's/^DOVECOT_PID=//p;s/^POSTFIX_PID=//p' "$STATE/mail-servers.env")"
fi
for p in $old_pids; do
  if alive "$p"; then die "servers already running for $STATE (pid $p); run $HERE/stop-mail-servers.sh $STATE first"; fi
done
# Masters killed hard (kill -9) leave their children (smtpd, imap-login, ...) for a
# few seconds, still holding the listening sockets. Wait for them, then SIGKILL
# what is left -- only processes of those sessions that run a Postfix/Dovecot binary.
leftovers() {
  local p s exe
  for p in $old_pids; do
    [ -n "$p" ] || continue
    for s in $(ps -e -o pid=,sid= | awk -v s="$p" '$2==s {print $1}'); do
      exe=$(readlink "/proc/$s/exe" 2>/dev/null) || continue
      case "$exe" in */dovecot/*|*/sbin/dovecot|*/postfix/*) alive "$s" && echo "$s";; esac
    done
  done
}
left=$(leftovers)
if [ -n "$left" ]; then
  echo "start-mail-servers: waiting for leftovers of a killed earlier run:" $left >&2
  for _ in $(seq 1 100); do left=$(leftovers); [ -z "$left" ] && break; sleep 0.05; done
  for p in $left; do kill -KILL "$p" 2>/dev/null || true; done
  for _ in $(seq 1 40); do [ -z "$(leftovers)" ] && break; sleep 0.05; done
fi
# from here on a failed start must not leave an env file that looks usable
rm -f "$STATE/mail-servers.env" "$STATE/mail-servers.env.tmp"
port_busy() {  # ss if available (iproute2), else try to connect
  if command -v ss >/dev/null; then ss -Htln "sport = :$1" | grep -q .
  else (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; fi
}
for p in "$IMAP_PORT" "$IMAPS_PORT" "$SMTP_PORT" "$SMTPS_PORT"; do
  if port_busy "$p"; then die "port $p already in use"; fi
done

# unix socket paths must stay < 108 bytes (sun_path); Dovecot's longest is ~ run/login/imap-master...
sock_probe="$STATE/dovecot/run/login/imap-urlauth-worker-XXXX"
[ "${#sock_probe}" -lt 100 ] || die "state dir path too long for unix sockets: $STATE (use a short dir, e.g. under /tmp)"

# ---- layout ----
# everything must be traversable by the 'postfix', 'dovenull', 'dovecot' users
# and MAIL_UID (mktemp -d creates 0700 dirs!)
chmod 0755 "$STATE"
mkdir -p "$STATE"/{logs,tls,dovecot,dovecot/lib,mail,postfix,postfix-spool,postfix-data}
chmod 0755 "$STATE"/{logs,tls,dovecot,mail,postfix}
chown root:root "$STATE/postfix-spool"; chmod 0755 "$STATE/postfix-spool"
chown postfix:postfix "$STATE/postfix-data"; chmod 0700 "$STATE/postfix-data"
rm -rf "$STATE/dovecot/run"   # stale sockets/pids from an unclean stop
rm -f "$STATE/postfix-spool/pid/master.pid"

INSTANCE="mt$(printf '%s' "$STATE" | cksum | cut -d' ' -f1)"

tick "TLS"
# ---- TLS: self-signed cert (CN=localhost, SAN localhost + 127.0.0.1) ----
if [ ! -s "$STATE/tls/cert.pem" ] || [ ! -s "$STATE/tls/key.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$STATE/tls/key.pem" -out "$STATE/tls/cert.pem" -days 3650 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    >/dev/null 2>&1 || die "openssl failed"
  chmod 0600 "$STATE/tls/key.pem"; chmod 0644 "$STATE/tls/cert.pem"
fi

tick "users"
# ---- users: Dovecot passwd-file + Postfix recipient table ----
: > "$STATE/dovecot/users"
: > "$STATE/postfix/vmailbox"
USERS_OUT=""
for entry in $MAIL_USERS; do
  case "$entry" in *:*) ;; *) entry="$entry:$entry-pw";; esac
  u=${entry%%:*}; pw=${entry#*:}
  [ -n "$u" ] && [ -n "$pw" ] || die "bad MAIL_USERS entry '$entry' (want user:password or user)"
  case "$u$pw" in *[!A-Za-z0-9._+-]*) die "bad MAIL_USERS entry '$entry' (use [A-Za-z0-9._+-] only)";; esac
  USERS_OUT="${USERS_OUT:+$USERS_OUT }$u:$pw"
  u=$(printf '%s' "$u" | tr 'A-Z' 'a-z')
  home="$STATE/mail/$u"
  mkdir -p "$home"
  chown "$MAIL_UID:$MAIL_GID" "$home"; chmod 0700 "$home"
  printf '%s:{PLAIN}%s:%s:%s::%s::\n' "$u" "$pw" "$MAIL_UID" "$MAIL_GID" "$home" >> "$STATE/dovecot/users"
  printf '%s@%s OK\n' "$u" "$MAIL_DOMAIN" >> "$STATE/postfix/vmailbox"
done
chown root:dovecot "$STATE/dovecot/users"; chmod 0640 "$STATE/dovecot/users"
[ -n "$USERS_OUT" ] || die "MAIL_USERS is empty"
MAIL_USERS=$USERS_OUT
# per-recipient replies at RCPT (Postfix access table, texthash: no postmap needed)
printf '%s\n' "$RCPT_ACCESS" | tr ';' '\n' | sed -e 's/^[[:space:]]*//' -e '/^$/d' > "$STATE/postfix/rcpt_access"

if [ "$SMTP_REQUIRE_AUTH" = 1 ]; then RELAY_POLICY="permit_sasl_authenticated, reject"; else RELAY_POLICY="permit"; fi

render() {  # render TEMPLATE OUT
  sed -e "s|@STATE@|$STATE|g" -e "s|@INSTANCE@|$INSTANCE|g" -e "s|@DOMAIN@|$MAIL_DOMAIN|g" \
      -e "s|@IMAP_PORT@|$IMAP_PORT|g" -e "s|@IMAPS_PORT@|$IMAPS_PORT|g" \
      -e "s|@SMTP_PORT@|$SMTP_PORT|g" -e "s|@SMTPS_PORT@|$SMTPS_PORT|g" \
      -e "s|@MAIL_UID@|$MAIL_UID|g" -e "s|@MAIL_GID@|$MAIL_GID|g" \
      -e "s|@AUTH_VERBOSE@|$AUTH_VERBOSE|g" -e "s|@RELAY_POLICY@|$RELAY_POLICY|g" \
      "$1" > "$2"
}
render "$CONF_SRC/dovecot.conf.in"       "$STATE/dovecot/dovecot.conf"
render "$CONF_SRC/postfix-main.cf.in"    "$STATE/postfix/main.cf"
render "$CONF_SRC/postfix-master.cf.in"  "$STATE/postfix/master.cf"
# Pitfall: Postfix (master for main.cf, smtpd for the texthash table) re-reads
# a config/table file in 300 ms steps until its mtime is >1 s in the past (guard
# against half-written files) -> +1.5..2 s startup AND +1.5 s on the first SMTP
# connection with freshly written files. Backdate them.
touch -d '-1 minute' "$STATE/postfix/main.cf" "$STATE/postfix/master.cf" "$STATE/postfix/vmailbox" \
  "$STATE/postfix/rcpt_access"

DCONF="$STATE/dovecot/dovecot.conf"
PCONF="$STATE/postfix"

cleanup_on_fail() {
  echo "---- dovecot.log (tail) ----" >&2; tail -n 30 "$STATE/logs/dovecot.log" >&2 2>/dev/null || true
  echo "---- postfix.log (tail) ----" >&2; tail -n 30 "$STATE/logs/postfix.log" >&2 2>/dev/null || true
  "$HERE/stop-mail-servers.sh" "$STATE" >/dev/null 2>&1 || true
  exit 1
}

# wait until a TCP port greets with the expected prefix (bash /dev/tcp, no extra tools)
wait_banner() {  # port prefix
  local port=$1 want=$2 deadline=$((SECONDS + READY_TIMEOUT)) line
  while [ $SECONDS -lt $deadline ]; do
    if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
      line=""
      IFS= read -r -t 2 line <&3 || true
      exec 3<&- 3>&-
      case "$line" in "$want"*) return 0;; esac
    fi
    sleep 0.05
  done
  echo "start-mail-servers: timeout waiting for $want on port $port" >&2
  return 1
}
wait_tcp() {  # port (TLS ports: just accept())
  local port=$1 deadline=$((SECONDS + READY_TIMEOUT))
  while [ $SECONDS -lt $deadline ]; do
    if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then exec 3<&- 3>&-; return 0; fi
    sleep 0.05
  done
  echo "start-mail-servers: timeout waiting for port $port" >&2
  return 1
}
wait_file() { local f=$1 deadline=$((SECONDS + READY_TIMEOUT)); while [ $SECONDS -lt $deadline ]; do [ -e "$f" ] && return 0; sleep 0.05; done; echo "start-mail-servers: timeout waiting for $f" >&2; return 1; }

tick "Dovecot"
# ---- Dovecot ----
doveconf -c "$DCONF" -n >/dev/null 2>"$STATE/logs/doveconf.err" || { cat "$STATE/logs/doveconf.err" >&2; die "dovecot config invalid"; }
# Pitfall: the dovecot master keeps the caller's stderr open forever. If a test
# harness captures our output through a pipe ($(...), CTest, CI log capture) it
# would never see EOF and hang -> always detach stdio.
dovecot -c "$DCONF" </dev/null >>"$STATE/logs/dovecot-start.log" 2>&1 || { cat "$STATE/logs/dovecot-start.log" >&2; cleanup_on_fail; }
wait_file "$STATE/dovecot/run/master.pid" || cleanup_on_fail
DOVECOT_PID=$(cat "$STATE/dovecot/run/master.pid")

tick "Postfix"
# ---- Postfix ----
# Fast path: create the queue layout ourselves and run master(8) directly.
# `postfix start` works too but its postfix-script/post-install checks fork ~150
# processes (≈3.5 s on a fresh queue dir, ≈0.7 s afterwards).
SP="$STATE/postfix-spool"
for d in active bounce corrupt defer deferred flush hold incoming saved trace private; do
  install -d -o postfix -g root -m 0700 "$SP/$d"
done
install -d -o postfix -g postdrop -m 0730 "$SP/maildrop"
install -d -o postfix -g postdrop -m 0710 "$SP/public"
install -d -o root -g root -m 0755 "$SP/pid"
# master -w: daemonizes, exits 0 only after the daemon initialised successfully
if ! "$PF_MASTER" -c "$PCONF" -w </dev/null >>"$STATE/logs/postfix-cmd.log" 2>&1; then
  # Pitfall: Postfix commands print fatal errors to stderr ONLY when stderr is a
  # tty, otherwise just to syslog (/dev/log, absent here) -> silent exit 1.
  # Re-run the checker under script(1) (bsdutils, always installed) to show why.
  echo "start-mail-servers: postfix master failed to start; 'postfix check' says:" >&2
  script -qec "postfix -c '$PCONF' check" /dev/null >&2 || true
  cleanup_on_fail
fi
wait_file "$STATE/postfix-spool/pid/master.pid" || cleanup_on_fail
POSTFIX_PID=$(tr -d ' \n' < "$STATE/postfix-spool/pid/master.pid")

tick "readiness"
# ---- readiness ----
wait_banner "$IMAP_PORT" "* OK" || cleanup_on_fail
wait_tcp "$IMAPS_PORT" || cleanup_on_fail
wait_file "$STATE/dovecot/run/lmtp" || cleanup_on_fail
wait_file "$STATE/dovecot/run/auth-client" || cleanup_on_fail
tick "imap ready"
wait_banner "$SMTP_PORT" "220" || cleanup_on_fail
wait_tcp "$SMTPS_PORT" || cleanup_on_fail

tick "ENVF"
ENVF="$STATE/mail-servers.env"
cat > "$ENVF.tmp" <<EOF
MAIL_STATE=$STATE
MAIL_HOST=127.0.0.1
IMAP_PORT=$IMAP_PORT
IMAPS_PORT=$IMAPS_PORT
SMTP_PORT=$SMTP_PORT
SMTPS_PORT=$SMTPS_PORT
MAIL_DOMAIN=$MAIL_DOMAIN
MAIL_USERS="$MAIL_USERS"
SMTP_REQUIRE_AUTH=$SMTP_REQUIRE_AUTH
MAIL_CA_CERT=$STATE/tls/cert.pem
DOVECOT_PID=$DOVECOT_PID
POSTFIX_PID=$POSTFIX_PID
DOVECOT_CONF=$DCONF
POSTFIX_CONF_DIR=$PCONF
EOF
mv -f "$ENVF.tmp" "$ENVF"
cat "$ENVF"
