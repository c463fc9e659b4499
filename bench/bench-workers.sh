#!/usr/bin/env bash
# Several workers on PostgreSQL against one on SQLite (issue 12, item 7), through the
# supportmail binary as cron would run it: N request mails in a Maildir are fetched,
# then `process` runs with 1, 2 and 4 workers at once on PostgreSQL and with one on
# SQLite (the same mails each time); each processed mail queues one answer, which
# `deliver` then sends into a spool Maildir with 1, 2 and 4 workers (and one on SQLite).
# Prints mails/s per run. A private PostgreSQL 15 cluster with durable commits
# (fsync on) is started under /tmp and thrown away.
#
# usage: bench/bench-workers.sh [BUILD_DIR]   env: N [2000]  PG_PORT [16532]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
BIN=$BUILD/supportmail
N=${N:-2000}
PORT=${PG_PORT:-16532}
WORK=$(mktemp -d /tmp/smbench.XXXX)
PGSTATE=/tmp/smbench-pg-$PORT
cleanup() { "$ROOT/tests/scripts/stop-postgres.sh" "$PGSTATE" --purge; rm -rf "$WORK"; }
trap cleanup EXIT
PG_FSYNC=on PG_PORT=$PORT "$ROOT/tests/scripts/start-postgres.sh" "$PGSTATE" >/dev/null
CONNINFO="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"

mkdir -p "$WORK/inbox/new" "$WORK/inbox/cur" "$WORK/inbox/tmp"
cat >"$WORK/partners.csv" <<CSV
partner_id,partner_name,membership,hq_country,contact_email,contact_name,contact_role,contact_country,contact_language,location_id,location_name,location_country
4648141,Contoso Cloud Partners,gold,DE,alice@example.test,Alice Schmidt,hq_primary,DE,en,,,
CSV
printf 'partner_id,benefit,renewal_date,location_id\n4648141,gold,%s,\n' "$(date -u +%F)" >"$WORK/renewals.csv"

config() {  # NAME DATABASE_URL
  grep -v -e '^database.url' -e '^templates.dir' -e '^transport.url' -e '^plans.gold.incidents' -e '^inbound.support.url' \
    "$ROOT/config/supportmail.properties" >"$WORK/$1.properties"
  cat >>"$WORK/$1.properties" <<CONF
database.url = $2
templates.dir = $ROOT/templates
transport.url = maildir:$WORK/spool-$1
inbound.support.url = maildir:$WORK/inbox-$1
plans.gold.incidents = 100000
delivery.batch = 50
CONF
}

# One site: partners, the contract, N requests fetched into the inbound queue.
prepare() {  # NAME DATABASE_URL
  config "$1" "$2"
  rm -rf "$WORK/inbox-$1"; cp -r "$WORK/inbox" "$WORK/inbox-$1"
  "$BIN" -q --config "$WORK/$1.properties" import-partners "$WORK/partners.csv"
  "$BIN" -q --config "$WORK/$1.properties" import-renewals "$WORK/renewals.csv"
  "$BIN" -q --config "$WORK/$1.properties" activate
  "$BIN" -q --config "$WORK/$1.properties" deliver   # the ID mail, out of the way
  local ids
  if [ "${2%%:*}" = sqlite ]; then ids=$(sqlite3 -separator ' ' "${2#sqlite:}" "SELECT access_id, contract_id FROM contracts")
  else ids=$(psql -Atq -F ' ' "${2#postgresql:}" -c "SELECT access_id, contract_id FROM contracts"); fi
  set -- "$1" $ids
  for i in $(seq 1 "$N"); do
    printf 'From: Requester %s <req%s@partner.example>\r\nTo: support@example.test\r\nSubject: help %s\r\nMessage-ID: <bench.%s@partner.example>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\nAccess ID: %s\r\nContract ID: %s\r\nProduct: Windows Server 2019\r\nUsage type: IT Pro\r\nProblem type: Performance\r\nCategory: Cluster\r\nSeverity: B\r\nDescription: case %s\r\n' \
      "$i" "$i" "$i" "$i" "$2" "$3" "$i" >"$WORK/inbox-$1/new/1700000000.M${i}P1.bench"
  done
  "$BIN" -q --config "$WORK/$1.properties" fetch
}

timed() {  # LABEL JOB WORKERS CONFIG
  local start end pids=()
  start=$(date +%s.%N)
  for _ in $(seq 1 "$3"); do "$BIN" -q --config "$4" "$2" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  end=$(date +%s.%N)
  awk -v n="$N" -v s="$start" -v e="$end" -v l="$1" 'BEGIN { printf "%-34s %6.2f s  %7.0f mails/s\n", l, e - s, n / (e - s) }'
}

createdb() { psql -q "$CONNINFO" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"; }

echo "N = $N requests, then N answers delivered into a spool; PostgreSQL 15 with fsync on"
createdb bench_sqlite_ref >/dev/null 2>&1 || true
prepare sqlite "sqlite:$WORK/site.db"
timed "process, SQLite, 1 worker" process 1 "$WORK/sqlite.properties"
timed "deliver, SQLite, 1 worker" deliver 1 "$WORK/sqlite.properties"
for w in 1 2 4; do
  createdb "bench_$w"
  prepare "pg$w" "postgresql:host=127.0.0.1 port=$PORT user=postgres dbname=bench_$w"
  timed "process, PostgreSQL, $w worker(s)" process "$w" "$WORK/pg$w.properties"
  timed "deliver, PostgreSQL, $w worker(s)" deliver "$w" "$WORK/pg$w.properties"
  sent=$(ls "$WORK/spool-pg$w/new" | wc -l)
  [ "$sent" -eq $((N + 1)) ] || echo "  !! spool holds $sent mails, expected $((N + 1))"
done
