#!/usr/bin/env bash
# Instructions per operation of core micro-benchmarks, two builds side by side (base vs new), counted by valgrind on fully
# optimised code (issue 20, session 14: a promise round trip, a rendezvous queue hand-over).
#
# Same method as bench/trace-overhead-instructions.sh (see its header for why each setting is there): the `loop` driver
# runs WARMUP invocations then COUNT, once with COUNT=C and once with COUNT=2C, under
# `valgrind --tool=cachegrind --cache-sim=no --branch-sim=no`; the difference of the two totals divided by
# C x OperationsPerInvoke is the instructions per operation with start-up, JIT, warm-up and shutdown removed.
# DOTNET_TieredCompilation=0 (FullOpts once), DOTNET_JitEnableOptionalRelocs=0 (FullOpts under valgrind),
# DOTNET_gcConcurrent=0, DOTNET_EnableWriteXorExecute=0. Tracing off. The counts do not depend on the machine's load.
# Output: a table per row, median (of ROUNDS) instructions per op for A and B, and B / A.
# Usage: A=/tmp/s13-new/bench/EioSharp.Benchmarks.dll B=bench/EioSharp.Benchmarks/bin/Release/net10.0/EioSharp.Benchmarks.dll \
#        ROUNDS=3 JOBS=2 ROWS='regex' OUT=bench/results/kernel-ab bench/kernel-ab-instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
JOBS=${JOBS:-2}
OUT=${OUT:-$ROOT/bench/results/kernel-ab}
A=${A:-/tmp/s13-new/bench/EioSharp.Benchmarks.dll}
B=${B:-$ROOT/bench/EioSharp.Benchmarks/bin/Release/net10.0/EioSharp.Benchmarks.dll}
ROWS=${ROWS:-.}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install -y valgrind)" >&2; exit 1; }
mkdir -p "$OUT"
export EIOSHARP_BENCH_JOB=cli DOTNET_TieredCompilation=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 \
  DOTNET_JitEnableOptionalRelocs=0 EIOSHARP_BENCH_TRACE=0

# "CLASS METHOD WARMUP C [Prop=Value]": WARMUP and C are invocations (each of OperationsPerInvoke operations).
BENCHES=(
  "CorePromisePingPong PromisePingPong 2 2"
  "CorePromisePingPong TaskCompletionSourcePingPong 2 2"
  "CoreQueue AsyncQueue 1 1 Capacity=0"
  "CoreQueue Channel 1 1 Capacity=0"
  "CoreForkJoin ForkJoin 2 4"
  "CoreForkJoin ForkJoinYielding 2 4"
  "CoreYield FiberYield 1 1 Fibers=1"
  "CoreFirst FirstAsync 2 2"
)

measure() { # dll class method warmup count [props] -> "<instructions> <ops>"
  local dll=$1 cls=$2 method=$3 warmup=$4 count=$5; shift 5
  local log ir ops
  log=$(nice valgrind --tool=cachegrind --cache-sim=no --branch-sim=no --cachegrind-out-file=/dev/null \
      dotnet "$dll" loop "$cls" "$method" "$warmup" "$count" "$@" 2>&1)
  ir=$(sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' <<<"$log" | tr -d ,)
  ops=$(sed -n 's/.* ops=\([0-9.]*\) .*/\1/p' <<<"$log")
  if [ -z "$ir" ] || [ -z "$ops" ]; then
    echo "run failed: $dll $cls $method $warmup $count $*" >&2
    echo "$log" | tail -20 >&2
    return 1
  fi
  echo "$ir $ops"
}

: >"$OUT/runs.txt"
tasks=()
for round in $(seq 1 "$ROUNDS"); do
  for b in "${BENCHES[@]}"; do
    read -r cls method warmup c props <<<"$b"
    grep -Eq "$ROWS" <<<"$cls.$method($props)" || continue
    for which in A B; do
      for mult in 1 2; do
        tasks+=("$round|$which|$mult|$cls|$method|$warmup|$((c * mult))|$props")
      done
    done
  done
done

run_task() {
  IFS='|' read -r round which mult cls method warmup count props <<<"$1"
  local dll res
  if [ "$which" = A ]; then dll=$A; else dll=$B; fi
  # shellcheck disable=SC2086
  res=$(measure "$dll" "$cls" "$method" "$warmup" "$count" $props) || return 1
  echo "$round $which $mult $cls.$method${props:+($props)} $res" >>"$OUT/runs.txt"
}
export -f measure run_task
export A B OUT
printf '%s\n' "${tasks[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_task "$@"' _ {}

python3 - "$OUT/runs.txt" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    rnd, which, mult, key, ir, ops = line.split()
    runs.setdefault(key, {}).setdefault(which, {}).setdefault(rnd, {})[mult] = (int(ir), float(ops))
print("| Benchmark | A instr/op | B instr/op | B / A | A, each round | B, each round |")
print("|---|---:|---:|---:|---|---|")
for key, by in runs.items():
    per = {}
    for which, rounds in by.items():
        vals = []
        for rnd, d in sorted(rounds.items()):
            if "1" in d and "2" in d:
                (i1, o1), (i2, o2) = d["1"], d["2"]
                vals.append((i2 - i1) / (o2 - o1))
        per[which] = vals
    a, b = per.get("A", []), per.get("B", [])
    ma = statistics.median(a) if a else None
    mb = statistics.median(b) if b else None
    ratio = f"{mb / ma:.3f}" if ma and mb else "-"
    fmt = lambda v: f"{v:,.0f}" if v is not None else "-"
    print(f"| {key} | {fmt(ma)} | {fmt(mb)} | {ratio} | {', '.join(f'{v:,.0f}' for v in a)} | {', '.join(f'{v:,.0f}' for v in b)} |")
PY
