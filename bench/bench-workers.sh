#!/usr/bin/env bash
# Several workers on PostgreSQL against one on SQLite (issue 12, item 7), through the
# supportmail binary as cron would run it: N request mails in a Maildir are fetched,
# then `process` runs with 1, 2 and 4 workers at once on PostgreSQL and with one on
# SQLite (the same mails each time); each processed mail queues one answer, which
# `deliver` then sends into a spool Maildir with 1, 2 and 4 workers (and one on SQLite).
# Prints mails/s per run and the ratios the issue aims at. A private PostgreSQL 15
# cluster with durable commits (fsync on) is started under /tmp and thrown away.
# The requests come from PARTNERS gold partners' primary contacts, each quoting
# its own contract's IDs, in random order, as a real load spreads over contracts
# (all on one contract, every debit would wait on that one balance lock). Each mail
# carries the Authentication-Results our MX writes (process.authserv_id) with a DMARC
# pass for the sender's domain, as production mail does: every request is then
# accepted and its address linked to the contract (without it the link is left out,
# process.require_authentication), and the run checks that every request became an
# incident with its debit and its link.
#
# The machine swings by a quarter from one run to the next, more than some of the
# differences measured: each round prints its own ratios (taken in that round) and
# the end their medians over ROUNDS rounds.
#
# usage: bench/bench-workers.sh [BUILD_DIR]   env: N [2000]  PARTNERS [500]  PG_PORT [16532]  ROUNDS [3]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
BIN=$BUILD/supportmail
N=${N:-2000}
PARTNERS=${PARTNERS:-500}
PORT=${PG_PORT:-16532}
ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d /tmp/smbench.XXXX)
PGSTATE=/tmp/smbench-pg-$PORT
cleanup() { "$ROOT/tests/scripts/stop-postgres.sh" "$PGSTATE" --purge; rm -rf "$WORK"; }
trap cleanup EXIT
PG_FSYNC=on PG_PORT=$PORT "$ROOT/tests/scripts/start-postgres.sh" "$PGSTATE" >/dev/null
CONNINFO="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"

mkdir -p "$WORK/inbox/new" "$WORK/inbox/cur" "$WORK/inbox/tmp"
python3 - "$WORK" "$PARTNERS" <<'PY'
import sys
work, partners = sys.argv[1], int(sys.argv[2])
with open(f"{work}/partners.csv", "w") as p, open(f"{work}/renewals.csv", "w") as r:
    p.write("partner_id,partner_name,membership,hq_country,contact_email,contact_name,contact_role,contact_country,contact_language,location_id,location_name,location_country\n")
    r.write("partner_id,benefit,renewal_date,location_id\n")
    for k in range(partners):
        p.write(f"{4600000 + k},Partner {k},gold,DE,primary@p{k}.example,Primary {k},hq_primary,DE,en,,,\n")
        r.write(f"{4600000 + k},gold,2026-11-02,\n")
PY

config() {  # NAME DATABASE_URL
  grep -v -e '^database.url' -e '^templates.dir' -e '^transport.url' -e '^plans.gold.incidents' -e '^inbound.support.url' \
    -e '^process.replies_per_sender_per_hour' -e '^process.require_authentication' -e '^process.authserv_id' \
    "$ROOT/config/supportmail.properties" >"$WORK/$1.properties"
  cat >>"$WORK/$1.properties" <<CONF
database.url = $2
templates.dir = $ROOT/templates
transport.url = maildir:$WORK/spool-$1
inbound.support.url = maildir:$WORK/inbox-$1
plans.gold.incidents = 100000
process.replies_per_sender_per_hour = 100000
process.require_authentication = true
process.authserv_id = mx.bench.example
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
  if [ "${2%%:*}" = sqlite ]; then sqlite3 -separator ' ' "${2#sqlite:}" "SELECT partner_id, access_id, contract_id FROM contracts ORDER BY id" >"$WORK/ids-$1"
  else psql -Atq -F ' ' "${2#postgresql:}" -c "SELECT partner_id, access_id, contract_id FROM contracts ORDER BY id" >"$WORK/ids-$1"; fi
  python3 - "$WORK/ids-$1" "$WORK/inbox-$1/new" "$N" <<'PY'
import random, sys
ids, inbox, n = [l.split() for l in open(sys.argv[1])], sys.argv[2], int(sys.argv[3])
rng = random.Random(7)  # the same mailbox for every site
for i in range(1, n + 1):
    partner, access, contract = ids[rng.randrange(len(ids))]
    k = int(partner) - 4600000
    with open(f"{inbox}/1700000000.M{i}P1.bench", "w", newline="") as f:
        f.write(f"Authentication-Results: mx.bench.example; dmarc=pass header.from=p{k}.example\r\n"
                f"From: Primary {k} <primary@p{k}.example>\r\nTo: support@example.test\r\nSubject: help {i}\r\n"
                f"Message-ID: <bench.{i}@partner.example>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\n"
                f"Access ID: {access}\r\nContract ID: {contract}\r\nProduct: Windows Server 2019\r\n"
                "Usage type: IT Pro\r\nProblem type: Performance\r\nCategory: Cluster\r\nSeverity: B\r\n"
                f"Description: case {i}\r\n")
PY
  "$BIN" -q --config "$WORK/$1.properties" fetch
}

declare -A RATE
timed() {  # LABEL JOB WORKERS CONFIG KEY
  local start end pids=()
  start=$(date +%s.%N)
  for _ in $(seq 1 "$3"); do "$BIN" -q --config "$4" "$2" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  end=$(date +%s.%N)
  RATE[$5]=$(awk -v n="$N" -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", n / (e - s) }')
  awk -v n="$N" -v s="$start" -v e="$end" -v l="$1" 'BEGIN { printf "%-34s %6.2f s  %7.0f mails/s\n", l, e - s, n / (e - s) }'
}
ratio() { awk -v a="${RATE[$1]}" -v b="${RATE[$2]}" 'BEGIN { printf "%.2f", a / b }'; }

query() {  # DATABASE_URL SQL: one value
  if [ "${1%%:*}" = sqlite ]; then sqlite3 "${1#sqlite:}" "$2"; else psql -Atq "${1#postgresql:}" -c "$2"; fi
}
# Every request accepted: an incident, its debit and its sender's link each, nothing else.
check() {  # DATABASE_URL
  local accepted incidents debits unlinked
  accepted=$(query "$1" "SELECT COUNT(*) FROM inbound WHERE state = 'done' AND reason LIKE 'accepted:%'")
  incidents=$(query "$1" "SELECT COUNT(*) FROM incidents")
  debits=$(query "$1" "SELECT COUNT(*) FROM ledger WHERE delta = -1")
  unlinked=$(query "$1" "SELECT COUNT(*) FROM incidents i WHERE NOT EXISTS (SELECT 1 FROM sender_links l
                         WHERE l.email = i.requester_email AND l.contract_ref = i.contract_ref)")
  [ "$accepted" -eq "$N" ] && [ "$incidents" -eq "$N" ] && [ "$debits" -eq "$N" ] && [ "$unlinked" -eq 0 ] ||
    echo "  !! of $N requests: $accepted accepted, $incidents incidents, $debits debits, $unlinked incidents' senders not linked"
}

createdb() {  # NAME [TEMPLATE]
  psql -q "$CONNINFO" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1" \
    -c "CREATE DATABASE $1${2:+ TEMPLATE $2}"
}
median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "N = $N requests from $PARTNERS partners (one contract each), then N answers delivered into a spool;"
echo "PostgreSQL 15 with fsync on, on this machine; $ROUNDS round(s); load $(cut -d' ' -f1-3 /proc/loadavg)"
# Each site is prepared once (partners, contracts, the N requests fetched) and each
# round starts from a copy of it: a fresh SQLite file, a PostgreSQL database made
# from the prepared one as its template.
prepare sqlite "sqlite:$WORK/site.db"
sqlite3 "$WORK/site.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
createdb bench_base
prepare pgbase "postgresql:host=127.0.0.1 port=$PORT user=postgres dbname=bench_base"
declare -A RATIOS
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round (load average $(cut -d' ' -f1 /proc/loadavg)):"
  cp "$WORK/site.db" "$WORK/site-$round.db"
  config "sqlite-$round" "sqlite:$WORK/site-$round.db"
  timed "  process, SQLite, 1 worker" process 1 "$WORK/sqlite-$round.properties" process-sqlite
  check "sqlite:$WORK/site-$round.db"
  timed "  deliver, SQLite, 1 worker" deliver 1 "$WORK/sqlite-$round.properties" deliver-sqlite
  for w in 1 2 4; do
    createdb "bench_$w" bench_base
    url="postgresql:host=127.0.0.1 port=$PORT user=postgres dbname=bench_$w"
    config "pg$w-$round" "$url"
    timed "  process, PostgreSQL, $w worker(s)" process "$w" "$WORK/pg$w-$round.properties" "process-$w"
    check "$url"
    timed "  deliver, PostgreSQL, $w worker(s)" deliver "$w" "$WORK/pg$w-$round.properties" "deliver-$w"
    sent=$(ls "$WORK/spool-pg$w-$round/new" | wc -l)
    [ "$sent" -eq "$N" ] || echo "  !! spool holds $sent mails, expected $N"
  done
  line="  this round:"
  for k in process-1:process-sqlite process-2:process-1 process-4:process-1 \
           deliver-1:deliver-sqlite deliver-2:deliver-1 deliver-4:deliver-1; do
    r=$(ratio "${k%%:*}" "${k##*:}")
    RATIOS[$k]+="$r "
    line+=" ${k%%:*} / ${k##*:} = $r x;"
  done
  echo "${line%;}"
done
m() { tr ' ' '\n' <<<"${RATIOS[$1]}" | grep . | median; }
echo "median of $ROUNDS round(s):"
echo "process: one PostgreSQL worker = $(m process-1:process-sqlite) x SQLite's rate (aim >= 0.5);" \
  "2 workers = $(m process-2:process-1) x one (aim >= 1.6), 4 = $(m process-4:process-1) x one"
echo "deliver: one PostgreSQL worker = $(m deliver-1:deliver-sqlite) x SQLite's rate;" \
  "2 workers = $(m deliver-2:deliver-1) x one (aim >= 1.6), 4 = $(m deliver-4:deliver-1) x one"
