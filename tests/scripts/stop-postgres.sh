#!/usr/bin/env bash
# Stop the cluster start-postgres.sh started under STATE_DIR (pg_ctl on its own
# data directory: nothing else is touched).
# usage: stop-postgres.sh STATE_DIR [--purge]   --purge also deletes STATE_DIR
set -uo pipefail
STATE=${1:?usage: $0 STATE_DIR [--purge]}
BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
[ -d "$STATE" ] || exit 0
if [ -f "$STATE/data/postmaster.pid" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -s /bin/sh -c "'$BIN/pg_ctl' -D '$STATE/data' -m fast -w -t 30 stop" >/dev/null 2>&1
  else
    "$BIN/pg_ctl" -D "$STATE/data" -m fast -w -t 30 stop >/dev/null 2>&1
  fi
fi
[ "${2:-}" != "--purge" ] || rm -rf "$STATE"
exit 0
