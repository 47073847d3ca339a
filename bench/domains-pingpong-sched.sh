#!/usr/bin/env bash
# Where the two threads of a cross-thread ping-pong run (issue 20, session 35, h196): one process of `loop
# DomainsPingPongBenchmarks METHOD 1 ITERS` under `perf record -a -e sched:sched_switch,sched:sched_wakeup,
# sched:sched_migrate_task` (system-wide: what else ran on each CPU shows too), then bench/lib/sched-pairs.py over the
# last part of the recording (SKIP, a fraction, default 0.3: start-up and JIT left out): the time each of the process's
# two busiest threads ran on each CPU, the time both ran at once, direct switches between them on one CPU, where their
# wake-ups landed (the waker's CPU or the other, and whether the other was idle), migrations, idle and other tasks' time
# per CPU. The tracepoints cost time per event: read the shares and counts, not the round trip's time.
# Usage: bash bench/domains-pingpong-sched.sh OUT_PREFIX DLL_DIR METHOD [ITERS] [VAR=VALUE...]
#   e.g. bash bench/domains-pingpong-sched.sh /tmp/h196/ps-base /tmp/s35-base/bench PromiseAcrossDomains 4
#   PREFIX="taskset -c 0" runs the process under that prefix.
set -euo pipefail
OUT=$1; DIR=$2; M=$3; ITERS=${4:-4}; shift 3; [ $# -gt 0 ] && shift
PREFIX=${PREFIX:-}; SKIP=${SKIP:-0.3}
HERE=$(cd "$(dirname "$0")" && pwd)
echo "load before $(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT.txt"
# shellcheck disable=SC2086
perf record -q -a -e sched:sched_switch,sched:sched_wakeup,sched:sched_migrate_task -o "$OUT.data" -- \
  env "$@" EIOSHARP_BENCH_DOMAIN_COUNTERS=1 EIOSHARP_BENCH_JOB=cli sh -c 'echo $$ > "$0"; exec '"$PREFIX"' dotnet "$1" loop DomainsPingPongBenchmarks "$2" 1 "$3"' \
  "$OUT.pid" "$DIR/EioSharp.Benchmarks.dll" "$M" "$ITERS" 2>&1 | grep -E '^main|^other|cpu_ns_per_op' >> "$OUT.txt" || true
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT.txt"
perf script -i "$OUT.data" -F pid,tid,cpu,time,event,trace 2>/dev/null > "$OUT.script"
python3 "$HERE/lib/sched-pairs.py" "$OUT.script" "$SKIP" "$(cat "$OUT.pid")" >> "$OUT.txt"
rm -f "$OUT.data"
cat "$OUT.txt"
