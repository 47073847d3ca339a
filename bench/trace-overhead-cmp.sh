#!/usr/bin/env bash
# CPU ns/op of the trace-overhead rows: a base build (BASE, default /tmp/h75-base: a copy of a bench bin/Release/net10.0)
# against a new one (NEWDIR), tracing off and on, alternating per row and round; medians of ROUNDS (h75, issue 17).
# h122: counts large enough for a run of about 1 s or more per row on a quiet machine (the old ones took 0.05-0.3 s, and
# start-up noise dominated), ROUNDS 5 by default, the order of builds and of off/on reversed every other round, and
# NEW_ENV (e.g. EIOSHARP_TRACE_CLOCK=tsc) set for the new build's runs only (BASE_ENV for the base's).
# Usage: BASE=dir ROUNDS=5 [SCALE=1] [NEW_ENV='VAR=value ...'] bench/trace-overhead-cmp.sh OUTFILE NEWDIR
OUTF=$1; NEW=$2; ROUNDS=${ROUNDS:-5}; SCALE=${SCALE:-1}
export EIOSHARP_BENCH_JOB=cli
# CLASS METHOD WARMUP COUNT [props]: COUNT invocations of 100k, 10k, 20k and 100k operations.
BENCHES=(
  "CoreYield FiberYield 10 100 Fibers=1"
  "CorePromisePingPong PromisePingPong 20 100"
  "CoreQueue AsyncQueue 5 30 Capacity=0"
  "CoreForkJoin ForkJoin 100 1000"
)
: > "$OUTF"
for r in $(seq 1 "$ROUNDS"); do
  for b in "${BENCHES[@]}"; do
    read -r cls m w c p <<<"$b"
    c=$((c * SCALE))
    if [ $((r % 2)) = 1 ]; then builds="base new"; traces="0 1"; else builds="new base"; traces="1 0"; fi
    for v in $builds; do
      dir=${BASE:-/tmp/h75-base}; envs=${BASE_ENV:-}
      [ "$v" = new ] && { dir=$NEW; envs=${NEW_ENV:-}; }
      for t in $traces; do
        # shellcheck disable=SC2086
        line=$(env $envs EIOSHARP_BENCH_TRACE=$t nice dotnet "$dir/EioSharp.Benchmarks.dll" loop $cls $m $w $c $p 2>&1 | grep cpu_ns_per_op)
        ns=$(sed -n 's/.*cpu_ns_per_op=\([0-9.]*\).*/\1/p' <<<"$line")
        echo "$r $v $t $cls.$m($p) $ns $(cut -d' ' -f1 /proc/loadavg)" >> "$OUTF"
      done
    done
  done
done
python3 - "$OUTF" <<'PY'
import sys, statistics
d={}
loads=[]
for l in open(sys.argv[1]):
    r,v,t,k,ns,load=l.split()
    d.setdefault(k,{}).setdefault((v,t),[]).append(float(ns))
    loads.append(float(load))
print("| row | base off | base on | base on/off | new off | new on | new on/off | new off/base off |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for k,x in d.items():
    m={kk:statistics.median(vv) for kk,vv in x.items()}
    g=lambda a,b: m.get((a,b))
    print(f"| {k} | {g('base','0'):.1f} | {g('base','1'):.1f} | {g('base','1')/g('base','0'):.2f} | {g('new','0'):.1f} | {g('new','1'):.1f} | {g('new','1')/g('new','0'):.2f} | {g('new','0')/g('base','0'):.2f} |")
print(f"load average (1 min) during the runs: {min(loads):.1f}-{max(loads):.1f}")
PY
