#!/usr/bin/env bash
# Installs what the tests need, builds, and runs the whole suite with ctest: unit tests, the
# corpus, and integration tests against a real Postfix + Dovecot that the suite starts on
# 127.0.0.1 (tests/scripts/start-mail-servers.sh). This is what CI runs (.ci/run):
#   1. build/ with the default compiler; the whole suite; scripts/check-tests-ran.py proves
#      every Catch2 test case ran exactly once;
#   2. build-asan/ with clang, ASan + UBSan and the fuzz targets; the whole suite again, with
#      sanitizer reports of every process (the spawned supportmail ones too) written to
#      build-asan/sanitizer-reports/, which must stay empty; the same check;
#   3. scripts/fuzz.sh: every fuzz target for FUZZ_SECONDS (40) seconds.
#   scripts/test.sh --quick   step 1 only
# The two build trees run their mail servers on different ports:
# SUPPORTMAIL_TEST_PORT_BASE (10000) and SUPPORTMAIL_SANITIZE_PORT_BASE (20000).
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=""
[ "${1:-}" = "--quick" ] && QUICK=1
BUILD=${BUILD_DIR:-build}
ASAN_BUILD=${ASAN_BUILD_DIR:-build-asan}
PORT_BASE=${SUPPORTMAIL_TEST_PORT_BASE:-10000}
ASAN_PORT_BASE=${SUPPORTMAIL_SANITIZE_PORT_BASE:-20000}

# Wall and CPU time (of this script's children, ctest's and the compilers' included) per phase.
# `times` runs in this shell (not in a $(...) subshell, whose counters start at zero).
TIMES_FILE=$(mktemp)
CPU=0
cpu_now() {
  times >"$TIMES_FILE"
  CPU=$(tail -1 "$TIMES_FILE" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.0f", t }')
}
PHASE="" PHASE_T0=0 PHASE_CPU0=0 REPORT=""
phase() {
  cpu_now
  if [ -n "$PHASE" ]; then
    local line
    line=$(printf '%-28s %5d s wall %6d s CPU' "$PHASE" $((SECONDS - PHASE_T0)) $((CPU - PHASE_CPU0)))
    echo "test.sh: $line"
    REPORT+="  $line"$'\n'
  fi
  PHASE=$1 PHASE_T0=$SECONDS PHASE_CPU0=$CPU
  [ -z "$PHASE" ] || echo "test.sh: == $PHASE"
}
trap 'rc=$?; rm -f "$TIMES_FILE"; [ $rc -eq 0 ] || echo "test.sh: FAILED (exit $rc) in phase: ${PHASE:-?}"' EXIT

# ctest over a build tree, then the proof that every test case ran.
run_suite() {
  local dir=$1 junit
  junit="$(cd "$dir" && pwd)/ctest-junit.xml"
  rm -f "$junit"
  # Passed tests' output kept whole (its end holds Catch2's count) for check-tests-ran.py.
  ctest --test-dir "$dir" --output-on-failure -j2 --timeout 600 --output-junit "$junit" \
    --test-output-size-passed 1000000 --test-output-size-failed 1000000 --test-output-truncation tail
  python3 scripts/check-tests-ran.py "$dir" "$junit"
}

phase "install dependencies"
scripts/install-deps.sh --test
if [ ! -d ../shared/corpus ]; then
  echo "test.sh: ../shared/corpus is absent: the corpus tests will fail and say so" >&2
fi

phase "build ($BUILD)"
BUILD_DIR=$BUILD scripts/build.sh -DSUPPORTMAIL_TEST_PORT_BASE="$PORT_BASE"
phase "tests ($BUILD)"
run_suite "$BUILD"

if [ -z "$QUICK" ]; then
  phase "build ($ASAN_BUILD)"
  BUILD_DIR=$ASAN_BUILD scripts/build.sh -DCMAKE_CXX_COMPILER=clang++-14 -DSUPPORTMAIL_FUZZ=ON \
    -DSUPPORTMAIL_BENCH=OFF -DSUPPORTMAIL_TEST_PORT_BASE="$ASAN_PORT_BASE"

  phase "tests ($ASAN_BUILD)"
  reports="$(pwd)/$ASAN_BUILD/sanitizer-reports"
  rm -rf "$reports"
  mkdir -p "$reports"
  # Every instrumented process, the supportmail children the tests spawn included, inherits
  # these and writes a report as reports/report.PROGRAM.PID: a report that only reached a child's
  # captured stderr would otherwise pass unseen. halt_on_error: the first report ends it.
  export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:log_exe_name=1:log_path=$reports/report"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_exe_name=1:log_path=$reports/report"
  export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"
  [ ! -x /usr/lib/llvm-14/bin/llvm-symbolizer ] || export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
  # The crash harness's kills are proved by the normal run (120); under the sanitizers each
  # round is several times slower, so fewer kills keep it inside ctest's 600 s.
  export CRASH_KILLS=${CRASH_KILLS_SANITIZED:-30}
  # Likewise the many-worker PostgreSQL tests: the issue's sizes (5,000 requests, 10,000
  # mails) in the normal run, a tenth here.
  export SUPPORTMAIL_TEST_SCALE=${SUPPORTMAIL_TEST_SCALE_SANITIZED:-0.1}
  suite_rc=0
  run_suite "$ASAN_BUILD" || suite_rc=$?
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS CRASH_KILLS SUPPORTMAIL_TEST_SCALE
  # LeakSanitizer's "Unable to get registers from thread N" is no finding: a thread was
  # ending while the leak check stopped the process, and LSan then scans that thread's
  # whole stack instead (or skips a thread already gone) and goes on. A report made of
  # nothing else is shown and counted, not failed; any other line fails the run. (Git's
  # test-lib.sh ignores it the same way; later LLVM prints it only at verbosity 1.)
  benign='^==([^=]+==)?[0-9]+==Unable to get registers from thread [0-9]+\.$'
  findings=0
  for f in "$reports"/*; do
    [ -e "$f" ] || continue
    if grep -Evq "$benign" "$f"; then
      findings=$((findings + 1))
    else
      echo "test.sh: LSan notice, no finding ($(basename "$f")): $(tr '\n' ' ' < "$f")"
    fi
  done
  if [ "$findings" -gt 0 ]; then
    echo "test.sh: $findings sanitizer report(s) in $reports:"
    for f in "$reports"/*; do
      grep -Evq "$benign" "$f" || continue
      echo "---- $f"; head -60 "$f"
    done
    exit 1
  fi
  [ "$suite_rc" -eq 0 ] || exit "$suite_rc"
  echo "test.sh: no sanitizer finding from any process"

  phase "fuzz ($ASAN_BUILD)"
  scripts/fuzz.sh "$ASAN_BUILD"
fi
phase ""
printf 'test.sh: time per phase:\n%s' "$REPORT"
echo "test.sh: PASSED: $([ -n "$QUICK" ] && echo "the suite (quick: no sanitizers, no fuzzing)" || echo "the suite, the suite under ASan + UBSan, every test case ran once, fuzzing found nothing")"
