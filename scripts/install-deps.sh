#!/usr/bin/env bash
# Installs what supportmail needs from Debian's packages (Debian 12).
#   scripts/install-deps.sh          build and run dependencies
#   scripts/install-deps.sh --test   also the real servers the tests start (PostgreSQL 15, Postfix,
#                                    Dovecot), the independent mail clients, script(1),
#                                    clang 14 for the sanitizer build and fuzzing, ccache,
#                                    gdb (a hung child's stacks)
#   scripts/install-deps.sh --bench  also GMime, which bench_parse_gmime compares with
#   scripts/install-deps.sh --render also Chromium, which scripts/render-mails.sh
#                                    photographs the mails with (not for CI tests)
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

PKGS="build-essential cmake ninja-build pkg-config libpoco-dev libmimetic-dev libcurl4-openssl-dev
      libssl-dev libsqlite3-dev libpq-dev catch2 libkainjow-mustache-dev libmimalloc-dev ca-certificates
      libutf8proc-dev libhowardhinnant-date-dev tzdata"
if [ "${1:-}" = "--test" ]; then
  PKGS="$PKGS postfix dovecot-imapd dovecot-lmtpd openssl swaks python3 procps iproute2 bsdutils postgresql"
  # The sanitizer build and the fuzz targets (clang, its runtimes, llvm-symbolizer for the
  # reports' stacks), and ccache, which scripts/build.sh uses when it is there.
  PKGS="$PKGS clang-14 libclang-rt-14-dev llvm-14 ccache"
  # gdb: a child the tests run that hangs is killed with its threads' stacks taken
  # (tests/support/test_support.cpp), so the failure says where it hung.
  PKGS="$PKGS gdb"
fi
if [ "${1:-}" = "--bench" ]; then
  PKGS="$PKGS libgmime-3.0-dev"
fi
if [ "${1:-}" = "--render" ]; then
  PKGS="$PKGS chromium"
fi

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
echo "install-deps: installing$missing"
# No system instance of Postfix or Dovecot: the tests run private instances.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
policy_added=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  policy_added=1
fi
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
[ -z "$policy_added" ] || $SUDO rm -f /usr/sbin/policy-rc.d
