#!/usr/bin/env bash
# CPU ns/op of the trace-overhead rows: a base build (BASE, default /tmp/h75-base: a copy of a bench bin/Release/net10.0)
# against a new one (NEWDIR), tracing off and on, alternating per row and round; medians of ROUNDS (h75, issue 17).
# Usage: BASE=dir ROUNDS=3 bench/trace-overhead-cmp.sh OUTFILE NEWDIR
OUTF=$1; NEW=$2; ROUNDS=${ROUNDS:-3}
export EIOSHARP_BENCH_JOB=cli
BENCHES=(
  "CoreYield FiberYield 10 30 Fibers=1"
  "CorePromisePingPong PromisePingPong 50 100"
  "CoreQueue AsyncQueue 10 30 Capacity=0"
  "CoreForkJoin ForkJoin 100 300"
)
: > "$OUTF"
for r in $(seq 1 $ROUNDS); do
  for b in "${BENCHES[@]}"; do
    read -r cls m w c p <<<"$b"
    for v in base new; do
      dir=${BASE:-/tmp/h75-base}; [ $v = new ] && dir=$NEW
      for t in 0 1; do
        line=$(EIOSHARP_BENCH_TRACE=$t nice dotnet $dir/EioSharp.Benchmarks.dll loop $cls $m $w $c $p 2>&1 | grep cpu_ns_per_op)
        ns=$(sed -n 's/.*cpu_ns_per_op=\([0-9.]*\).*/\1/p' <<<"$line")
        echo "$r $v $t $cls.$m($p) $ns $(cut -d' ' -f1 /proc/loadavg)" >> "$OUTF"
      done
    done
  done
done
python3 - "$OUTF" <<'PY'
import sys, statistics
d={}
for l in open(sys.argv[1]):
    r,v,t,k,ns,load=l.split()
    d.setdefault(k,{}).setdefault((v,t),[]).append(float(ns))
print("| row | base off | base on | base on/off | new off | new on | new on/off | new off/base off |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for k,x in d.items():
    m={kk:statistics.median(vv) for kk,vv in x.items()}
    g=lambda a,b: m.get((a,b))
    print(f"| {k} | {g('base','0'):.1f} | {g('base','1'):.1f} | {g('base','1')/g('base','0'):.2f} | {g('new','0'):.1f} | {g('new','1'):.1f} | {g('new','1')/g('new','0'):.2f} | {g('new','0')/g('base','0'):.2f} |")
PY
