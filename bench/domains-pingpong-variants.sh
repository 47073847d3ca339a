#!/usr/bin/env bash
# The cross-domain ping-pong (and TCS) in any set of variants, alternated per process, with the price of a moved cache
# line read before each round (issue 20, h206; bench/cpu-line-latency/line.c: on this VM the host's vCPU placement moves
# it between ~115 and ~500 ns, and the round trip with it).
# Usage: bash bench/domains-pingpong-variants.sh OUT N VARIANT...
#   VARIANT = name:bench_dir:method:pin[:VAR=VAL,VAR=VAL...]; method d = PromiseAcrossDomains, t =
#   TaskCompletionSourceTwoThreads; pin none|apart|shared (the benchmark's Pin property: the bench DLL must have it).
#   PREFIX="chrt -f 10" (each run bounded by timeout 120), ITERS=3, WARMUP=1.
# Prints per variant: median wall and CPU ns per round trip (and the ratio to the first variant), each process's
# values, the spins' yields and sleeps per round trip (the last call's larger domain) and the load.
set -uo pipefail
OUT=$1; N=$2; shift 2
ITERS=${ITERS:-3}; WARMUP=${WARMUP:-1}; PREFIX=${PREFIX:-}
LINE=$(mktemp); gcc -O2 -pthread -o "$LINE" "$(dirname "$0")/cpu-line-latency/line.c"
: > "$OUT"
for i in $(seq 1 "$N"); do
  echo "=== line $(timeout 20 $PREFIX "$LINE" 5000 0 1 0)" >> "$OUT"
  for v in "$@"; do
    IFS=: read -r name dir m pin envs <<< "$v"
    [ "$m" = d ] && m=PromiseAcrossDomains; [ "$m" = t ] && m=TaskCompletionSourceTwoThreads
    envarr=(); [ -n "${envs:-}" ] && IFS=, read -ra envarr <<< "$envs"
    echo "=== $name run $i $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT"
    # shellcheck disable=SC2086
    env "${envarr[@]}" EIOSHARP_BENCH_DOMAIN_COUNTERS=1 EIOSHARP_BENCH_JOB=cli timeout 120 $PREFIX dotnet "$dir/EioSharp.Benchmarks.dll" \
      loop DomainsPingPongBenchmarks $m "$WARMUP" "$ITERS" Pin=$pin 2>&1 | grep -E '^main|^other|cpu_ns_per_op' >> "$OUT" || true
  done
done
rm -f "$LINE"
echo "line round trips: $(grep -o 'median [0-9]* ns' "$OUT" | awk '{print $2}' | tr '\n' ' ')"
python3 - "$OUT" <<'PY'
import re, statistics as st, sys
runs, cur, order = {}, None, []
for line in open(sys.argv[1]):
    m = re.match(r'=== (\S+) run (\d+) \S+ load (\S+)', line)
    if m:
        cur = {'load': m[3], 'y': [], 'sl': []}
        if m[1] not in runs: order.append(m[1])
        runs.setdefault(m[1], []).append(cur); continue
    if cur is None: continue
    for key, rx in (('sl', r'sleeps=([\d.]+)'), ('y', r'yields=([\d.]+)')):
        mm = re.search(rx, line)
        if mm: cur[key].append(float(mm[1]))
    mm = re.search(r'cpu_ns_per_op=([\d.]+) wall_ns_per_op=([\d.]+)', line)
    if mm: cur['cpu'], cur['wall'] = float(mm[1]), float(mm[2])
ref = None
for b in order:
    rs = [r for r in runs[b] if 'wall' in r]
    if not rs: print(b, 'no runs'); continue
    w = st.median(r['wall'] for r in rs); c = st.median(r['cpu'] for r in rs)
    if ref is None: ref = (w, c)
    print(f"{b}: n={len(rs)} wall {w:.0f} cpu {c:.0f} ({w/ref[0]:.2f}x, {c/ref[1]:.2f}x first)")
    print("  wall: " + ' '.join(f"{r['wall']:.0f}" for r in rs))
    print("  cpu:  " + ' '.join(f"{r['cpu']:.0f}" for r in rs))
    if all(r['y'] for r in rs):
        print("  yields: " + ' '.join(f"{max(r['y'][-2:]):.2f}" for r in rs) + "  sleeps: " + ' '.join(f"{max(r['sl'][-2:]):.3f}" for r in rs))
    print("  load: " + ' '.join(r['load'] for r in rs))
PY
