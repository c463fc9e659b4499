#!/usr/bin/env bash
# Peak memory of `supportmail process` against the depth of its queue (issue 13,
# item 4: at most 64 MB plus twice the largest message, flat from 1,000 to 100,000
# mails waiting). For each count: a fresh SQLite site with 200 gold partners, that
# many requests (one of them with a 4 MB attachment, the largest message) fetched
# from a Maildir, then `process` run once under /usr/bin/time; prints its peak RSS
# (ru_maxrss), its time and the bound.
#
# usage: bench/bench-memory.sh [BUILD_DIR] [COUNT...]   (default counts: 1000 100000)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
shift || true
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(1000 100000)
BIN=$BUILD/supportmail
WORK=$(mktemp -d /tmp/smmem.XXXX)
trap 'rm -rf "$WORK"' EXIT

echo "peak RSS of one 'supportmail process' run over the whole queue (load $(cut -d' ' -f1-3 /proc/loadavg))"
for n in "${COUNTS[@]}"; do
  site=$WORK/site-$n
  mkdir -p "$site/inbox/new" "$site/inbox/cur" "$site/inbox/tmp"
  grep -v -e '^database.url' -e '^templates.dir' -e '^transport.url' -e '^plans.gold.incidents' \
    -e '^inbound.support.url' -e '^process.replies_per_sender_per_hour' "$ROOT/config/supportmail.properties" \
    >"$site/site.properties"
  cat >>"$site/site.properties" <<CONF
database.url = sqlite:$site/site.db
templates.dir = $ROOT/templates
transport.url = maildir:$site/spool
inbound.support.url = maildir:$site/inbox
plans.gold.incidents = 100000
process.replies_per_sender_per_hour = 100000
CONF
  python3 - "$site" <<'PY'
import sys
site = sys.argv[1]
with open(f"{site}/partners.csv", "w") as p, open(f"{site}/renewals.csv", "w") as r:
    p.write("partner_id,partner_name,membership,hq_country,contact_email,contact_name,contact_role,contact_country,contact_language\n")
    r.write("partner_id,benefit,renewal_date\n")
    for k in range(200):
        p.write(f"{5000000 + k},Partner {k},gold,DE,primary@p{k}.example,Primary {k},hq_primary,DE,en\n")
        r.write(f"{5000000 + k},gold,2026-11-02\n")
PY
  "$BIN" -q --config "$site/site.properties" import-partners "$site/partners.csv"
  "$BIN" -q --config "$site/site.properties" import-renewals "$site/renewals.csv"
  "$BIN" -q --config "$site/site.properties" activate
  sqlite3 -separator ' ' "$site/site.db" "SELECT partner_id, access_id, contract_id FROM contracts ORDER BY id" >"$site/ids"
  python3 - "$site" "$n" <<'PY'
import base64, os, sys
site, n = sys.argv[1], int(sys.argv[2])
ids = [line.split() for line in open(f"{site}/ids")]
attachment = base64.encodebytes(os.urandom(3 * 1024 * 1024)).decode().replace("\n", "\r\n")
for i in range(n):
    partner, access, contract = ids[i % len(ids)]
    k = int(partner) - 5000000
    text = (f"Access ID: {access}\r\nContract ID: {contract}\r\nProduct: SQL Server\r\nSeverity: B\r\n"
            f"Description: the cluster fails over every hour ({i}).\r\n")
    head = (f"From: Primary {k} <primary@p{k}.example>\r\nTo: support@example.test\r\n"
            f"Subject: cluster fails over ({i})\r\nMessage-ID: <mem.{i}@p{k}.example>\r\n"
            "Date: Thu, 26 Nov 2026 04:00:00 +0000\r\nMIME-Version: 1.0\r\n")
    if i == n // 2:  # the largest message: a request with a 4 MB attachment
        body = (head + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
                "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text + "--b\r\n"
                'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="logs.bin"\r\n'
                "Content-Transfer-Encoding: base64\r\n\r\n" + attachment + "--b--\r\n")
    else:
        body = head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
    with open(f"{site}/inbox/new/{i}.mem:2,", "w") as f:
        f.write(body)
PY
  largest=$(find "$site/inbox/new" -type f -printf '%s\n' | sort -n | tail -1)
  "$BIN" -q --config "$site/site.properties" fetch
  /usr/bin/time -f '%M %e' -o "$site/time" "$BIN" -q --config "$site/site.properties" process
  read -r rss seconds <"$site/time"
  awk -v n="$n" -v rss="$rss" -v s="$seconds" -v big="$largest" 'BEGIN {
    bound = 64 * 1024 + 2 * big / 1024
    printf "%7d mails queued: process peak RSS %6.1f MB in %6.1f s; largest message %.1f MB, bound 64 MB + 2 x largest = %.1f MB: %s\n",
      n, rss / 1024, s, big / 1048576, bound / 1024, (rss <= bound ? "within" : "OVER") }'
  rm -rf "$site"
done
