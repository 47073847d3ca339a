#!/usr/bin/env bash
# The cross-domain ping-pong's CPU placement (issue 20, session 35, h199): one loop-driver process of
# `DomainsPingPongBenchmarks METHOD 1 ITERS` under `perf record -a` of sched_waking/sched_wakeup/sched_migrate_task/
# sched_switch (bounded by timeout 60), then bench/lib/sched-pair-placement.py on the pair of threads: per wake-up of
# either, onto which CPU (the waker's or the other) and whether the other CPU was idle, the waking->running latency;
# migrations (at wake-up or while runnable, onto the peer's CPU or away); switch-outs by kind (sleep, or runnable:
# a yield or preemption, and to whom); the share of time both threads were placed on one CPU, per 100 ms window.
# Needs root (system-wide tracepoints). The pair: PromiseAcrossDomains: the main thread (the main domain) and the
# "eio domain-N" thread; TaskCompletionSourceTwoThreads: PAIR="dotnet" (main and the unnamed thread);
# TaskCompletionSourceTwoLoopThreads: PAIR="pong ping".
# Usage: bash bench/domains-pingpong-placement.sh OUTPREFIX BENCH_DIR METHOD [VAR=VALUE...]
#   e.g. bash bench/domains-pingpong-placement.sh /tmp/pp /tmp/s35-base/bench PromiseAcrossDomains EIOSHARP_BACKEND=epoll
set -euo pipefail
OUT=$1; DIR=$2; M=$3; shift 3
HERE=$(cd "$(dirname "$0")" && pwd)
read -r PREFIX_T MAIN_T <<< "${PAIR:-eio }"
echo "load $(cut -d' ' -f1-4 /proc/loadavg) at $(date -u +%T)" > "$OUT.txt"
env "$@" EIOSHARP_BENCH_DOMAIN_COUNTERS=1 EIOSHARP_BENCH_JOB=cli timeout 60 perf record -q -m 4096 -a \
  -e sched:sched_waking,sched:sched_wakeup,sched:sched_migrate_task,sched:sched_switch -o "$OUT.data" -- \
  sh -c "echo \$\$ > $OUT.pid; exec dotnet $DIR/EioSharp.Benchmarks.dll loop DomainsPingPongBenchmarks $M 1 ${ITERS:-3}" >> "$OUT.txt" 2>&1 || true
perf script -i "$OUT.data" -F comm,pid,tid,cpu,time,event,trace > "$OUT.script" 2>/dev/null
# shellcheck disable=SC2086
python3 "$HERE/lib/sched-pair-placement.py" "$OUT.script" "$(cat "$OUT.pid")" "${PREFIX_T:-eio }" ${MAIN_T:-} >> "$OUT.txt"
cat "$OUT.txt"
