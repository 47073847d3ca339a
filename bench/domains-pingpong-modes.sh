#!/usr/bin/env bash
# The cross-domain round trip's modes (issue 20, session 33, h187): N processes per build of `loop
# DomainsPingPongBenchmarks PromiseAcrossDomains 1 ITERS` with the domains' counters (EIOSHARP_BENCH_DOMAIN_COUNTERS=1),
# the two builds alternated, then per build: wall and CPU per round trip (medians over processes, and each process's
# value), the mode of each process by its last iteration's sleeps per round trip (the larger of the two domains':
# good < 0.05, mid < 0.5, bad otherwise; bad = both domains sleep once per hand-off, §187) and the histogram.
# Usage: bash bench/domains-pingpong-modes.sh OUT N BASE_DIR NEW_DIR [VAR=VALUE...]
#   BASE_DIR/NEW_DIR hold EioSharp.Benchmarks.dll; VAR=VALUE... is environment for both (e.g. EIOSHARP_BACKEND=epoll);
#   PREFIX="chrt -f 10" (both threads on their own cores: others cannot preempt them) or PREFIX="taskset -c 0"; ITERS=3.
# e.g. bash bench/domains-pingpong-modes.sh /tmp/modes.txt 10 /tmp/s33-base/bench /tmp/h187/new/bench
set -euo pipefail
OUT=$1; N=$2; BASE=$3; NEW=$4; shift 4
ITERS=${ITERS:-3}; PREFIX=${PREFIX:-}
: > "$OUT"
for i in $(seq 1 "$N"); do
  for b in base new; do
    d=$BASE; [ "$b" = new ] && d=$NEW
    echo "=== $b run $i $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT"
    # shellcheck disable=SC2086
    env "$@" EIOSHARP_BENCH_DOMAIN_COUNTERS=1 EIOSHARP_BENCH_JOB=cli timeout 300 $PREFIX dotnet "$d/EioSharp.Benchmarks.dll" \
      loop DomainsPingPongBenchmarks PromiseAcrossDomains 1 "$ITERS" 2>&1 | grep -E '^main|^other|cpu_ns_per_op' >> "$OUT" || true
  done
done
python3 - "$OUT" <<'PY'
import re, statistics as st, sys
runs, cur = {}, None
for line in open(sys.argv[1]):
    m = re.match(r'=== (\w+) run (\d+) \S+ load (\S+)', line)
    if m:
        cur = {'load': m[3], 'sl': [], 'ws': []}; runs.setdefault(m[1], []).append(cur); continue
    if cur is None: continue
    m = re.search(r'sleeps=([\d.]+)', line)
    if m: cur['sl'].append(float(m[1]))
    m = re.search(r'wakespins=([\d.]+)', line)
    if m: cur['ws'].append(float(m[1]))
    m = re.search(r'cpu_ns_per_op=([\d.]+) wall_ns_per_op=([\d.]+)', line)
    if m: cur['cpu'], cur['wall'] = float(m[1]), float(m[2])
for b, rs in runs.items():
    rs = [r for r in rs if 'wall' in r]
    last = [max(r['sl'][-2:]) for r in rs]
    mode = ['good' if s < 0.05 else 'mid' if s < 0.5 else 'bad' for s in last]
    print(f"{b}: {len(rs)} processes, wall median {st.median(r['wall'] for r in rs):.0f} ns, CPU median "
          f"{st.median(r['cpu'] for r in rs):.0f} ns; modes " + ' '.join(f"{k} {mode.count(k)}" for k in ('good', 'mid', 'bad')))
    print("  wall:  " + ' '.join(f"{r['wall']:.0f}" for r in rs))
    print("  CPU:   " + ' '.join(f"{r['cpu']:.0f}" for r in rs))
    print("  sleeps (last iteration, larger domain): " + ' '.join(f"{s:.3f}" for s in last))
    if all(r['ws'] for r in rs):
        print("  wake spins (last iteration, larger domain): " + ' '.join(f"{max(r['ws'][-2:]):.3f}" for r in rs))
    print("  load:  " + ' '.join(r['load'] for r in rs))
PY
