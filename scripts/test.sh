#!/usr/bin/env bash
# Installs what the tests need, builds, and runs the whole suite with ctest:
# unit tests, the corpus, and integration tests against a real Postfix + Dovecot
# that the suite starts on 127.0.0.1 (tests/scripts/start-mail-servers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh
if [ ! -d ../shared/corpus ]; then
  echo "test.sh: ../shared/corpus is absent: the corpus tests will fail and say so" >&2
fi
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j2 --timeout 600
