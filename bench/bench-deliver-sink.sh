#!/usr/bin/env bash
# Delivery over several connections (issue 13, item 3) against Postfix's smtp-sink, which
# answers 250 and keeps nothing, so that the client is what is measured. In each round:
#   ceiling      smtp-source -s 16 -d: 16 sessions at once, each over one kept connection
#   smtp-source  smtp-source -s 1 -d: one kept connection
#   deliver 1    bench_deliver with delivery.connections = 1
#   deliver N    bench_deliver with delivery.connections = N (4), the mails to 100 recipients
#   transport    bench_transport over 1 and over N connections: mail::SmtpTransport (libcurl)
#                alone, no database and no hand-over between threads: the floor under deliver
# all to the same sink, N mails with a LEN-byte body each; bench_deliver commits every
# outcome to its SQLite outbox as production does. Prints each figure, the ratios
# (deliver 1 / smtp-source, deliver N / ceiling) and the load average, then the medians;
# smtp-source's and bench_deliver's CPU per mail are printed too.
# Targets: deliver 1 >= 90 % of smtp-source, deliver 4 >= 75 % of the ceiling.
#
# usage: bench/bench-deliver-sink.sh [BUILD_DIR]
#   env: N [4000]  LEN [2000]  ROUNDS [3]  CONNECTIONS [4]  SINK_PORT [17100]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
N=${N:-4000}
LEN=${LEN:-2000}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-4}
PORT=${SINK_PORT:-17100}
SBIN=/usr/sbin
[ -x "$SBIN/smtp-sink" ] || SBIN=/usr/lib/postfix/sbin

# smtp-sink refuses to run as root without a user to switch to.
as_user=()
[ "$(id -u)" = 0 ] && as_user=(-u nobody)
"$SBIN/smtp-sink" "${as_user[@]}" "127.0.0.1:$PORT" 256 &
SINK=$!
trap 'kill "$SINK" 2>/dev/null || true; wait "$SINK" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

# mails/s of smtp-source with these options; its CPU per mail goes to stderr, to set
# beside bench_deliver's (on a busy machine the CPU figures swing less than the rates)
source_rate() {
  python3 - "$N" "$SBIN/smtp-source" "$@" -d -m "$N" -l "$LEN" -f support@example.test -t alice@example.test \
    "127.0.0.1:$PORT" <<'PY'
import resource, subprocess, sys, time
n = int(sys.argv[1])
t0 = time.monotonic()
subprocess.run(sys.argv[2:], check=True)
seconds = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print("    smtp-source %s: CPU %.0f us/mail" % (" ".join(sys.argv[3:5]), 1e6 * (ru.ru_utime + ru.ru_stime) / n),
      file=sys.stderr)
print(round(n / seconds))
PY
}
# mails/s of bench_deliver over CONNECTIONS connections to RECIPIENTS addresses
deliver_rate() {
  local out
  out=$("$BUILD/bench/bench_deliver" "smtp://127.0.0.1:$PORT" "$N" "$LEN" alice@example.test "$1" "$2")
  echo "    $out" >&2
  sed -E 's/.* ([0-9]+) mails\/s.*/\1/' <<<"$out"
}

# mails/s of the transport alone over CONNECTIONS connections
transport_rate() {
  local out
  out=$("$BUILD/bench/bench_transport" "smtp://127.0.0.1:$PORT" "$N" "$LEN" alice@example.test "$1")
  echo "    $out" >&2
  sed -E 's/.* ([0-9]+) mails\/s.*/\1/' <<<"$out"
}

results=()
for round in $(seq "$ROUNDS"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  echo "round $round (load average $load, $(nproc) cores):"
  ceiling=$(source_rate -s 16)
  single=$(source_rate -s 1)
  ours1=$(deliver_rate 1 1)
  oursN=$(deliver_rate "$CONNECTIONS" 100)
  bare1=$(transport_rate 1)
  bareN=$(transport_rate "$CONNECTIONS")
  r1=$(python3 -c "print(round(100 * $ours1 / $single))")
  rN=$(python3 -c "print(round(100 * $oursN / $ceiling))")
  b1=$(python3 -c "print(round(100 * $bare1 / $single))")
  bN=$(python3 -c "print(round(100 * $bareN / $ceiling))")
  echo "  ceiling (smtp-source -s 16) $ceiling/s; smtp-source over 1 connection $single/s"
  echo "  deliver over 1 connection $ours1/s = $r1 % of smtp-source (target 90 %)"
  echo "  deliver over $CONNECTIONS connections $oursN/s = $rN % of the ceiling (target 75 %)"
  echo "  transport alone over 1 connection $bare1/s = $b1 % of smtp-source; over $CONNECTIONS $bareN/s = $bN % of the ceiling"
  results+=("$r1 $rN $b1 $bN")
done
printf '%s\n' "${results[@]}" | python3 -c "
import statistics, sys
rows = [tuple(map(int, l.split())) for l in sys.stdin if l.strip()]
m = [statistics.median(r[k] for r in rows) for k in range(4)]
print('median of %d rounds: deliver 1 = %d %% of smtp-source, deliver $CONNECTIONS = %d %% of the ceiling' % (len(rows), m[0], m[1]))
print('  the transport alone (libcurl, no database): 1 = %d %% of smtp-source, $CONNECTIONS = %d %% of the ceiling' % (m[2], m[3]))"
