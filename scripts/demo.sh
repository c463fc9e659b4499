#!/usr/bin/env bash
# The demo on the embedded default: SQLite in var/, a Maildir spool in var/spool,
# the sample partners and renewals in sample/. Runs the main job end to end:
# import-partners → import-renewals → activate → deliver, then shows the mails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
SM="build/supportmail --config config/supportmail.properties"
mkdir -p var
set -x
$SM import-partners sample/partners.csv
$SM import-renewals sample/renewals.csv
$SM activate --dry-run
$SM activate
$SM activate --partner 7001234      # Action Pack: only on request or by an administrator
$SM deliver
set +x
echo
echo "ID mails in var/spool/new:"
ls -1 var/spool/new
first=$(ls -1 var/spool/new | head -n 1)
echo
echo "---- headers of var/spool/new/$first ----"
sed -n '1,/^\r\{0,1\}$/p' "var/spool/new/$first"
echo "Run the demo again: nothing is activated or sent twice."
