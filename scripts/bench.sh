#!/usr/bin/env bash
# Runs the benchmarks on purpose (they are not tests): builds with the benchmarks
# into build/ (or $BUILD_DIR) and runs each one that was built, printing its figures.
#   scripts/bench.sh            every benchmark, default sizes
#   scripts/bench.sh parse      only those whose name contains "parse"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench
scripts/install-deps.sh --test  # bench-deliver.sh runs a private Postfix + Dovecot
BUILD_DIR=${BUILD_DIR:-build}
scripts/build.sh -DSUPPORTMAIL_BENCH=ON
for b in "$BUILD_DIR"/bench/bench_*; do
  [ -x "$b" ] || continue
  # These need a server: scripts/bench-deliver.sh and bench/bench-deliver-sink.sh run them.
  case "$(basename "$b")" in bench_deliver | bench_transport) continue ;; esac
  case "$(basename "$b")" in *"${1:-}"*) ;; *) continue ;; esac
  echo "== $(basename "$b")"
  "$b"
done
case deliver in *"${1:-}"*) echo "== bench_deliver (scripts/bench-deliver.sh)"; SKIP_BUILD=1 scripts/bench-deliver.sh ;; esac
