#!/usr/bin/env bash
# Per-round-trip system calls and scheduler events of one DomainsPingPongBenchmarks method (issue 20, session 32, h182),
# by difference of two loop-driver runs (LO and HI timed invocations of 20,000 round trips, one warm-up each), so that
# start-up cancels out; with PromiseAcrossDomains it also prints the domains' own counters (spins, hits, yields, sleeps,
# wake-ups per round trip, EIOSHARP_BENCH_DOMAIN_COUNTERS=1) of the HI run's last invocation. The tracepoints slow every
# system call: read the counts, not the times.
# Usage: bash bench/domains-pingpong-counts.sh DLL METHOD BACKEND [LO HI]
#   e.g. bash bench/domains-pingpong-counts.sh /tmp/s32-base/bench/EioSharp.Benchmarks.dll PromiseAcrossDomains epoll
set -euo pipefail
DLL=$1; M=$2; B=$3; LO=${4:-2}; HI=${5:-7}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
EV='syscalls:sys_enter_sched_yield,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_write,sched:sched_switch,sched:sched_wakeup'
run() {
  EIOSHARP_BACKEND=$B EIOSHARP_BENCH_JOB=cli EIOSHARP_BENCH_DOMAIN_COUNTERS=1 perf stat -x, -e "$EV" -o "$TMP/perf.$1" \
    dotnet "$DLL" loop DomainsPingPongBenchmarks "$M" 1 "$1" >"$TMP/out.$1" 2>&1
}
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
run "$LO"; run "$HI"
python3 - "$LO" "$HI" "$TMP/perf.$LO" "$TMP/perf.$HI" <<'PY'
import sys
lo, hi, a, b = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
def read(path):
    d = {}
    for line in open(path):
        p = line.strip().split(',')
        if len(p) > 3 and p[0].replace('.', '').isdigit():
            d[p[2].split(':')[-1]] = float(p[0])
    return d
A, B = read(a), read(b)
n = (hi - lo) * 20000
print(' '.join(f"{k.replace('sys_enter_', '')}={(B[k] - A.get(k, 0)) / n:.3f}" for k in B))
PY
grep -h cpu_ns "$TMP/out.$HI" | sed 's/.*ops=/ops=/'
grep -h '^main\|^other' "$TMP/out.$HI" | tail -2 || true
