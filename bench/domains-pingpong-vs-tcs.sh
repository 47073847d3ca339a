#!/usr/bin/env bash
# The cross-domain round trip against TaskCompletionSource, alternated per process (issue 20, session 35, h196): N rounds,
# each one process of `loop DomainsPingPongBenchmarks PromiseAcrossDomains 1 ITERS` from BASE_DIR, one from NEW_DIR and
# one of `TaskCompletionSourceTwoThreads` (from BASE_DIR), all with the domains' counters on
# (EIOSHARP_BENCH_DOMAIN_COUNTERS=1); then per side: wall and CPU per round trip (medians over processes and each
# process's value), the ratio of the medians to TCS's and base's, the modes as in domains-pingpong-modes.sh (by the
# last iteration's sleeps per round trip), the spins' yields per round trip (the larger domain's), and NEW's shared-CPU
# spins (h196's counter, `sharedcpu=`, when the build prints it).
# Usage: bash bench/domains-pingpong-vs-tcs.sh OUT N BASE_DIR NEW_DIR [VAR=VALUE...]
#   PREFIX="taskset -c 0" (then also DOTNET_PROCESSOR_COUNT=2 so the spin stays on) or PREFIX="chrt -f 10"; ITERS=3;
#   WARMUP=1 (untimed calls first: with one, the JIT's tiering thread was seen taking a CPU for ~90 ms of a timed call);
#   PIN=apart|shared (issue 20, h206): every process's two sides pin their own threads, apart to CPUs 0 and 1, shared
#   both to CPU 0 (the benchmark's Pin property: both builds' bench DLLs must have it; the process keeps seeing two CPUs).
set -euo pipefail
OUT=$1; N=$2; BASE=$3; NEW=$4; shift 4
ITERS=${ITERS:-3}; PREFIX=${PREFIX:-}; WARMUP=${WARMUP:-1}; PIN=${PIN:-}
PIN_ARG=(); [ -n "$PIN" ] && PIN_ARG=("Pin=$PIN")
: > "$OUT"
for i in $(seq 1 "$N"); do
  for b in base new tcs; do
    d=$BASE; m=PromiseAcrossDomains
    [ "$b" = new ] && d=$NEW
    [ "$b" = tcs ] && m=TaskCompletionSourceTwoThreads
    echo "=== $b run $i $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT"
    # shellcheck disable=SC2086
    env "$@" EIOSHARP_BENCH_DOMAIN_COUNTERS=1 EIOSHARP_BENCH_JOB=cli timeout 300 $PREFIX dotnet "$d/EioSharp.Benchmarks.dll" \
      loop DomainsPingPongBenchmarks $m "$WARMUP" "$ITERS" "${PIN_ARG[@]}" 2>&1 | grep -E '^main|^other|cpu_ns_per_op' >> "$OUT" || true
  done
done
python3 - "$OUT" <<'PY'
import re, statistics as st, sys
runs, cur = {}, None
for line in open(sys.argv[1]):
    m = re.match(r'=== (\w+) run (\d+) \S+ load (\S+)', line)
    if m:
        cur = {'load': m[3], 'sl': [], 'y': [], 'sh': []}; runs.setdefault(m[1], []).append(cur); continue
    if cur is None: continue
    for key, rx in (('sl', r'sleeps=([\d.]+)'), ('y', r'yields=([\d.]+)'), ('sh', r'sharedcpu=([\d.]+)')):
        m = re.search(rx, line)
        if m: cur[key].append(float(m[1]))
    m = re.search(r'cpu_ns_per_op=([\d.]+) wall_ns_per_op=([\d.]+)', line)
    if m: cur['cpu'], cur['wall'] = float(m[1]), float(m[2])
med = {}
for b, rs in runs.items():
    rs = [r for r in rs if 'wall' in r]
    if not rs: continue
    med[b] = (st.median(r['wall'] for r in rs), st.median(r['cpu'] for r in rs))
for b, rs in runs.items():
    rs = [r for r in rs if 'wall' in r]
    if not rs: continue
    w, c = med[b]
    ratio = ''
    if 'tcs' in med and b != 'tcs': ratio += f"; {w / med['tcs'][0]:.2f}x TCS wall, {c / med['tcs'][1]:.2f}x TCS CPU"
    if 'base' in med and b == 'new': ratio += f"; {w / med['base'][0]:.2f}x base wall, {c / med['base'][1]:.2f}x base CPU"
    print(f"{b}: {len(rs)} processes, wall median {w:.0f} ns, CPU median {c:.0f} ns{ratio}")
    print("  wall:  " + ' '.join(f"{r['wall']:.0f}" for r in rs))
    print("  CPU:   " + ' '.join(f"{r['cpu']:.0f}" for r in rs))
    if b != 'tcs' and all(r['sl'] for r in rs):
        last = [max(r['sl'][-2:]) for r in rs]
        mode = ['good' if s < 0.05 else 'mid' if s < 0.5 else 'bad' for s in last]
        print("  modes: " + ' '.join(f"{k} {mode.count(k)}" for k in ('good', 'mid', 'bad')) + "; sleeps: " + ' '.join(f"{s:.3f}" for s in last))
        print("  yields (last iteration, larger domain): " + ' '.join(f"{max(r['y'][-2:]):.2f}" for r in rs))
        if all(r['sh'] for r in rs):
            print("  shared-CPU spins (last iteration, larger domain): " + ' '.join(f"{max(r['sh'][-2:]):.2f}" for r in rs))
    print("  load:  " + ' '.join(r['load'] for r in rs))
PY
