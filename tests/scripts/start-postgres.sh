#!/usr/bin/env bash
# Start a throw-away PostgreSQL 15 cluster for the tests: initdb as the postgres
# user, trust authentication, listening on 127.0.0.1 only, every file under
# STATE_DIR. No systemd needed. Run as root (or as postgres).
#
# usage: start-postgres.sh STATE_DIR
# Environment: PG_PORT [15432]  PG_BIN [/usr/lib/postgresql/15/bin]
#   PG_FSYNC [off]  on = durable commits, as in production (benchmarks)
#
# A stale STATE_DIR from a killed run is stopped and wiped first. On success
# writes STATE_DIR/postgres.env (PG_CONNINFO=..., PG_PORT=...) and prints it;
# on failure prints the server log and exits 1. stop-postgres.sh stops it.
set -euo pipefail

STATE=${1:?usage: $0 STATE_DIR}
PORT=${PG_PORT:-15432}
BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
[ -x "$BIN/initdb" ] || { echo "start-postgres: $BIN/initdb not found (install the postgresql package: scripts/install-deps.sh --test)" >&2; exit 1; }

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$HERE/stop-postgres.sh" "$STATE" --purge >/dev/null 2>&1 || true
mkdir -p "$STATE"
[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$STATE"

as_postgres "'$BIN/initdb' -D '$STATE/data' -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >'$STATE/initdb.log' 2>&1" || {
  cat "$STATE/initdb.log" >&2; exit 1; }
# Test-speed settings: the cluster is thrown away, so it need not survive a power cut.
cat >>"$STATE/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$STATE'
fsync = ${PG_FSYNC:-off}
full_page_writes = ${PG_FSYNC:-off}
max_connections = 100
CONF
if ! as_postgres "'$BIN/pg_ctl' -D '$STATE/data' -l '$STATE/server.log' -w -t 30 start >/dev/null"; then
  cat "$STATE/server.log" >&2 || true
  exit 1
fi
{
  echo "PG_PORT=$PORT"
  echo "PG_CONNINFO='host=127.0.0.1 port=$PORT user=postgres dbname=postgres'"
} >"$STATE/postgres.env.tmp"
mv "$STATE/postgres.env.tmp" "$STATE/postgres.env"
cat "$STATE/postgres.env"
