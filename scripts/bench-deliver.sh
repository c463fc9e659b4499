#!/usr/bin/env bash
# Delivery over one reused SMTP connection against Postfix's own smtp-source, on a
# private Postfix + Dovecot (tests/scripts/start-mail-servers.sh, ports 15xxx):
# three rounds of each, N mails with a PAYLOAD-byte body, and the ratio.
#   scripts/bench-deliver.sh [N=1000] [PAYLOAD=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
LEN=${2:-2000}
BUILD_DIR=${BUILD_DIR:-build}
if [ -z "${SKIP_BUILD:-}" ]; then
  scripts/install-deps.sh --test
  scripts/build.sh -DSUPPORTMAIL_BENCH=ON
fi
STATE=$(mktemp -d /tmp/sm-bench-mail.XXXXXX)
# smtp-source cannot authenticate: the loopback may send without AUTH here.
export IMAP_PORT=15143 IMAPS_PORT=15993 SMTP_PORT=15025 SMTPS_PORT=15465 SMTP_REQUIRE_AUTH=0
tests/scripts/start-mail-servers.sh "$STATE" >/dev/null
trap 'tests/scripts/stop-mail-servers.sh "$STATE" >/dev/null 2>&1 || true; rm -rf "$STATE"' EXIT
for round in 1 2 3; do
  ours=$("$BUILD_DIR"/bench/bench_deliver "smtp://127.0.0.1:$SMTP_PORT" "$N" "$LEN" alice@example.test)
  echo "$ours"
  start=$(date +%s.%N)
  /usr/sbin/smtp-source -d -m "$N" -l "$LEN" -f support@example.test -t alice@example.test "127.0.0.1:$SMTP_PORT"
  end=$(date +%s.%N)
  python3 - "$ours" "$start" "$end" "$N" <<'PY'
import re, sys
ours = float(re.search(r"([0-9.]+) mails/s", sys.argv[1]).group(1))
theirs = int(sys.argv[4]) / (float(sys.argv[3]) - float(sys.argv[2]))
print(f"smtp-source: {theirs:.0f} mails/s; supportmail = {100 * ours / theirs:.0f} % of smtp-source")
PY
done
