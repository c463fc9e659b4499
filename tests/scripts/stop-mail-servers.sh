#!/usr/bin/env bash
# Stop the Dovecot + Postfix test instance started by start-mail-servers.sh.
# usage: stop-mail-servers.sh STATE_DIR [--purge]
# (supportmail's copy of /work/shared/testing/mail-servers/stop-mail-servers.sh)
#   --purge  also delete STATE_DIR afterwards
# Only touches the processes recorded for this state dir (master PIDs and the
# processes in their sessions); never kills by name.
set -uo pipefail

STATE=${1:?usage: $0 STATE_DIR [--purge]}
PURGE=${2:-}
[ -d "$STATE" ] || { echo "stop-mail-servers: no such dir $STATE" >&2; exit 0; }
STATE=$(cd "$STATE" && pwd -P)

pid_from() { [ -s "$1" ] && tr -d ' \n' < "$1" || true; }
DOVECOT_PID=$(pid_from "$STATE/dovecot/run/master.pid")
POSTFIX_PID=$(pid_from "$STATE/postfix-spool/pid/master.pid")
if [ -f "$STATE/mail-servers.env" ]; then
  [ -n "$DOVECOT_PID" ] || DOVECOT_PID=$(sed -n 's/^DOVECOT_PID=//p' "$STATE/mail-servers.env")
  [ -n "$POSTFIX_PID" ] || POSTFIX_PID=$(sed -n 's/^POSTFIX_PID=//p' "$STATE/mail-servers.env")
fi

# alive = exists and is not a zombie (PID 1 in containers may reap late)
alive() { local l; [ -n "$1" ] && { read -r l < "/proc/$1/stat"; } 2>/dev/null || return 1; l=${l##*) }; [ "${l%% *}" != Z ]; }

# is PID still the process we started? (guards against PID reuse)
is_ours() {  # pid expected-exe-basename
  local pid=$1 want=$2 exe
  [ -n "$pid" ] && alive "$pid" || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [ "${exe##*/}" = "$want" ]
}

# processes in the session led by PID (both masters call setsid())
session_pids() { ps -e -o pid=,sid= | awk -v s="$1" '$2==s && $1!=s {print $1}'; }

# Send SIGTERM to both masters at once (Dovecot's master needs ~1 s to wind
# down), wait up to 5 s, then SIGKILL whatever is left of their sessions.
targets=""; kids=""
is_ours "$POSTFIX_PID" master  && targets="$targets $POSTFIX_PID"
is_ours "$DOVECOT_PID" dovecot && targets="$targets $DOVECOT_PID"
for p in $targets; do kids="$kids $(session_pids "$p")"; done
for p in $targets; do kill -TERM "$p" 2>/dev/null; done
for _ in $(seq 1 100); do
  left=""
  for p in $targets $kids; do alive "$p" && left="$left $p"; done
  [ -z "$left" ] && break
  sleep 0.05
done
for p in $targets $kids; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
rm -f "$STATE/postfix-spool/pid/master.pid" "$STATE/dovecot/run/master.pid"

if [ "$PURGE" = "--purge" ]; then rm -rf "$STATE"; fi
exit 0
