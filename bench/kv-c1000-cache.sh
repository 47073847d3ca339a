#!/usr/bin/env bash
# Simulated cache misses per request at 1000 clients (issue 14, session 29, h172): redis-benchmark -c 1000 -P 1 -r 100000
# -d 16 -t TEST runs against the server under callgrind with its cache simulation (--cache-sim=yes: a first-level data
# cache D1 and a last-level cache LL, by default the host's sizes), all 1000 connections open and busy the whole time; the
# counts of WINDOWS windows of SECS seconds each (callgrind_control -z before, -d after) are divided by the requests the
# server ran in the window (INFO's total_commands_processed, read just before and after). Unlike the callgrind windows of
# bench/kv-p1-instructions.sh, no connection is opened inside a window (each redis-benchmark run there opens its
# connections anew: at 1000 clients, 20 requests a connection, the accept path would be most of a window). The server runs
# on epoll (EIOSHARP_BACKEND=epoll: under valgrind 3.19 an io_uring server waits in io_cqring_wait for ever). Load-
# independent; slow (minutes).
#
#   bench/kv-c1000-cache.sh TARGET ...   # TARGET: a directory or path of EioSharp.Kv.dll, or "redis"
#
# Environment: TEST (get; or set), CLIENTS (1000), WARMUP (20000 requests before the JIT settles), SETTLE (20: seconds of
# the steady load before the first window), SECS (20), WINDOWS (3), REPEATS (1: rounds over the targets, alternating),
# KV_ARGS, KV_ENV as in bench/lib/callgrind-windows.sh, CACHE ("": the host's cache sizes; e.g. "--D1=32768,8,64
# --LL=1048576,16,64"). Prints per window: requests, then Ir D1mr D1mw DLmr DLmw per request; then the lowest window of
# each run (by D1 misses) and the medians per target.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEST="${TEST:-get}"; CLIENTS="${CLIENTS:-1000}"; WARMUP="${WARMUP:-20000}"; SETTLE="${SETTLE:-20}"; SECS="${SECS:-20}"
WINDOWS="${WINDOWS:-3}"; REPEATS="${REPEATS:-1}"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ $# -gt 0 ] || { sed -n '2,18p' "$0"; exit 2; }
# shellcheck source=bench/lib/callgrind-windows.sh
. "$ROOT/bench/lib/callgrind-windows.sh"
cgw_init kv-c1000-cache
CGW_REDIS_ARGS=(--save ''); KV_ENV="DOTNET_TieredPGO=0 EIOSHARP_BACKEND=epoll ${KV_ENV:-}"
CGW_TOOL_ARGS="--cache-sim=yes ${CACHE:-}"
BPID=""
trap '[ -n "$BPID" ] && kill "$BPID" 2>/dev/null; cgw_cleanup' EXIT INT TERM

commands() { redis-cli -p "$1" info stats | tr -d '\r' | awk -F: '/^total_commands_processed:/ { print $2 }'; }

# events DUMP: "Ir D1mr D1mw DLmr DLmw" of the dump's summary line (by the names on its events: line).
events() {
  awk '/^events:/ { for (i = 2; i <= NF; i++) col[$i] = i }
       /^(summary|totals):/ { print $col["Ir"], $col["D1mr"], $col["D1mw"], $col["DLmr"], $col["DLmw"]; exit }' "$1"
}

measure() { # target run -> "target run window requests Ir D1mr D1mw DLmr DLmw (per request)" per window
  local target=$1 run=$2 w c0 c1 f
  cgw_start "$target" "$run" --appendonly yes
  cgw_wait_ready "$PORT" || return 1
  redis-benchmark -p "$PORT" -c "$CLIENTS" -n "$WARMUP" -P 1 -r 100000 -d 16 -t "$TEST" -q >/dev/null 2>&1
  sleep 3; cgw_wait_jit_idle
  redis-benchmark -p "$PORT" -c "$CLIENTS" -n 1000000000 -P 1 -r 100000 -d 16 -t "$TEST" -q >/dev/null 2>&1 &
  BPID=$!
  sleep "$SETTLE"
  for w in $(seq 1 "$WINDOWS"); do
    c0=$(commands "$PORT"); callgrind_control -z "$SPID" >/dev/null
    sleep "$SECS"
    callgrind_control -d "$SPID" >/dev/null; c1=$(commands "$PORT")
    f=$(wait_dump "$SPID" "$w")
    # shellcheck disable=SC2046
    python3 -c 'import sys; n = int(sys.argv[4]) - int(sys.argv[3]); v = [int(x) / n for x in sys.argv[5:]]
print(sys.argv[1], sys.argv[2], n, " ".join("%.1f" % x for x in v))' "$target" "$run" "$c0" "$c1" $(events "$f")
  done
  kill "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null || true; BPID=""
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || kill "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  rm -f "/tmp/perf-$SPID.map" "/tmp/perfinfo-$SPID.map"
  SPID=""
}

: >"$WORK/runs.txt"
run=0
for rep in $(seq 1 "$REPEATS"); do
  for t in "$@"; do
    run=$((run + 1))
    echo "# $t run $run ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))" >&2
    measure "$t" "$run" | tee -a "$WORK/runs.txt" >&2
  done
done
echo "target | run | requests | Ir | D1mr | D1mw | DLmr | DLmw (per request; the window with the fewest D1 misses per run)"
python3 - "$WORK/runs.txt" <<'PY'
import collections, statistics, sys
best = {}
for line in open(sys.argv[1]):
    t, run, n, *v = line.split()
    v = [float(x) for x in v]
    if (t, run) not in best or v[1] + v[2] < best[(t, run)][1][1] + best[(t, run)][1][2]:
        best[(t, run)] = (int(n), v)
per = collections.defaultdict(list)
for (t, run), (n, v) in best.items():
    print(t, "|", run, "|", n, "|", " | ".join("%.1f" % x for x in v))
    per[t].append(v)
for t, vs in per.items():
    print("median", t, "|", " | ".join("%.1f" % statistics.median(x[i] for x in vs) for i in range(5)))
PY
