#!/usr/bin/env bash
# Runs the benchmarks on purpose (they are not tests): builds with the benchmarks
# into build/ (or $BUILD_DIR) and runs each one that was built, printing its figures.
#   scripts/bench.sh            every benchmark, default sizes
#   scripts/bench.sh parse      only those whose name contains "parse"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench
BUILD_DIR=${BUILD_DIR:-build}
scripts/build.sh -DSUPPORTMAIL_BENCH=ON
for b in "$BUILD_DIR"/bench/bench_*; do
  [ -x "$b" ] || continue
  case "$(basename "$b")" in *"${1:-}"*) ;; *) continue ;; esac
  echo "== $(basename "$b")"
  "$b"
done
