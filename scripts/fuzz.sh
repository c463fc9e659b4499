#!/usr/bin/env bash
# Runs every libFuzzer target of fuzz/ for a bounded time, two at a time.
#   scripts/fuzz.sh BUILD_DIR [TARGET...]
# BUILD_DIR was configured with -DSUPPORTMAIL_FUZZ=ON (scripts/test.sh does it: build-asan).
# FUZZ_SECONDS (default 40) per target. Mail targets start from ../shared/corpus, the others
# from fuzz/seeds/ and the repository's own samples (sample/, config/, templates/). What the
# fuzzer learns stays in BUILD_DIR/fuzz-corpus/TARGET for the next run; a crashing input is
# saved in BUILD_DIR/fuzz-findings/ and fails the script (turn it into a unit test, fix the code).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:?usage: scripts/fuzz.sh BUILD_DIR [TARGET...]}
shift
SECONDS_EACH=${FUZZ_SECONDS:-40}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(mime request_fields classify csv_import config templates)
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
CORPUS=$(cd .. && pwd)/shared/corpus
[ -d "$CORPUS" ] || { echo "fuzz.sh: $CORPUS is absent: the mail targets have no seeds" >&2; exit 1; }

# The seeds of a target: directories libFuzzer reads (recursively), never writes.
seeds_of() {
  case $1 in
    mime|classify) echo "$CORPUS" ;;
    request_fields) echo "$PWD/fuzz/seeds/request_fields $CORPUS" ;;
    csv_import) echo "$PWD/fuzz/seeds/csv $PWD/sample" ;;
    config) echo "$PWD/fuzz/seeds/config $PWD/config" ;;
    templates) echo "$PWD/fuzz/seeds/templates $PWD/templates" ;;
    *) echo "fuzz.sh: unknown target $1" >&2; return 1 ;;
  esac
}

run_one() {
  local target=$1 bin="$BUILD_DIR/fuzz/fuzz_$1" work="$BUILD_DIR/fuzz-corpus/$1"
  local findings="$BUILD_DIR/fuzz-findings/$1" log="$BUILD_DIR/fuzz-logs/$1.log" seeds rc=0
  seeds=$(seeds_of "$target")
  mkdir -p "$work" "$findings"
  # shellcheck disable=SC2086
  "$bin" "$work" $seeds -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
    -max_len=131072 -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1 || rc=$?
  local runs added cov
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
  cov=$(sed -n 's/.*DONE *cov: \([0-9]*\).*/\1/p' "$log" | tail -1)
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $target: FINDING (exit $rc) after ${runs:-?} runs; input in $findings, log $log"
    grep -E 'ERROR: |SUMMARY: |runtime error|^==[0-9]+==' "$log" | head -20 | sed 's/^/    /'
    return 1
  fi
  echo "fuzz: $target: ${runs:-?} runs in ${SECONDS_EACH} s, ${cov:-?} edges covered, ${added:-?} new inputs, no finding"
}

mkdir -p "$BUILD_DIR/fuzz-logs"
failed=0
pids=()
names=()
for t in "${TARGETS[@]}"; do
  [ -x "$BUILD_DIR/fuzz/fuzz_$t" ] || { echo "fuzz.sh: $BUILD_DIR/fuzz/fuzz_$t is not built" >&2; exit 1; }
  run_one "$t" &
  pids+=($!)
  names+=("$t")
  # Two at a time: the machine has two cores.
  if [ ${#pids[@]} -ge 2 ]; then
    wait "${pids[0]}" || failed=$((failed + 1))
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: $failed of ${#TARGETS[@]} targets found a crash, a hang or a leak"
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets, ${SECONDS_EACH} s each, no finding"
