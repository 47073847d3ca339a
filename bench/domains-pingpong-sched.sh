#!/usr/bin/env bash
# Where the two threads of a cross-thread ping-pong run (issue 20, session 35, h196): one process of `loop
# DomainsPingPongBenchmarks METHOD 1 ITERS` under `perf record -a -e sched:sched_switch,sched:sched_wakeup,
# sched:sched_migrate_task` (system-wide: what else ran on each CPU shows too), then bench/lib/sched-pairs.py, per
# invocation (each PromiseAcrossDomains call starts a new domain thread, PEER its name's prefix, 'eio domain' by default):
# the time each side ran on each CPU, the share of the call in which both ran at once and in which they shared one CPU,
# direct switches between them, where their wake-ups landed (the waker's CPU or the other, and whether the other was
# idle), migrations, idle and other tasks' time per CPU. The tracepoints cost time per event: read the shares and
# counts, not the round trip's time. For the tasks other than the pair by name, see the section in docs/BENCHMARKS.md.
# Usage: bash bench/domains-pingpong-sched.sh OUT_PREFIX DLL_DIR METHOD [ITERS] [VAR=VALUE...]
#   e.g. bash bench/domains-pingpong-sched.sh /tmp/h196/ps-base /tmp/s35-base/bench PromiseAcrossDomains 4
#   PREFIX="taskset -c 0" runs the process under that prefix.
set -euo pipefail
OUT=$1; DIR=$2; M=$3; ITERS=${4:-4}; shift 3; [ $# -gt 0 ] && shift
PREFIX=${PREFIX:-}; PEER=${PEER:-eio domain}
HERE=$(cd "$(dirname "$0")" && pwd)
echo "load before $(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT.txt"
# shellcheck disable=SC2086
perf record -q -a -e sched:sched_switch,sched:sched_wakeup,sched:sched_migrate_task -o "$OUT.data" -- \
  env "$@" EIOSHARP_BENCH_DOMAIN_COUNTERS=1 EIOSHARP_BENCH_JOB=cli sh -c 'echo $$ > "$0"; exec '"$PREFIX"' dotnet "$1" loop DomainsPingPongBenchmarks "$2" 1 "$3"' \
  "$OUT.pid" "$DIR/EioSharp.Benchmarks.dll" "$M" "$ITERS" 2>&1 | grep -E '^main|^other|cpu_ns_per_op' >> "$OUT.txt" || true
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT.txt"
perf script -i "$OUT.data" -F pid,tid,cpu,time,event,trace 2>/dev/null > "$OUT.script"
python3 "$HERE/lib/sched-pairs.py" "$OUT.script" "$(cat "$OUT.pid")" "$PEER" >> "$OUT.txt"
rm -f "$OUT.data"
cat "$OUT.txt"
