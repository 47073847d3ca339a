#!/usr/bin/env bash
# Fiber-tracing overhead on the core micro-benchmarks, counted in instructions instead of time (issue 17).
#
# CPU time per operation on this shared VM varies by far more than the 10% to resolve (the same binary measured 58-129 ns
# per yield), and the VM has no hardware counters (`perf stat -e instructions:u` is "not supported"), so the instructions
# are counted by valgrind (`--tool=cachegrind --cache-sim=no --branch-sim=no`: every thread, the GC's included).
# For each benchmark row and each variant (off: tracing off, the default; on: EIOSHARP_BENCH_TRACE=1, EioTrace.Start()
# recording into the rings) the `loop` driver of bench/EioSharp.Benchmarks runs WARMUP invocations then COUNT, once with
# COUNT=C and once with COUNT=2C: the difference of the two totals is the instructions of C invocations with start-up,
# JIT, warm-up and shutdown removed; divided by C x OperationsPerInvoke it is instructions per operation.
# The code is compiled once, fully optimised and without profile-guided tiers (DOTNET_TieredCompilation=0): with tiering on,
# tier-up happens at different points of a run under valgrind and the two run lengths no longer differ by C invocations
# of the same code. DOTNET_gcConcurrent=0 (no background GC thread) and DOTNET_EnableWriteXorExecute=0 (valgrind and the
# W^X double mapping of JIT code do not mix).
# DOTNET_JitEnableOptionalRelocs=0 (h83): under valgrind the runtime's code heap lands where the JIT's rel32 hints for
# call targets are wrong; the JIT's FullOpts compile of every method with a direct call then fails a noway_assert
# (dotnet/runtime#100600) and is retried MinOpts, so before this setting the counts were of unoptimised code (h47, h75:
# DOTNET_JitDisasmSummary=1 listed each such method [MinOpts]). With it, every method is [FullOpts] (checked with
# DOTNET_JitDisasmSummary=1); the JIT then does not use rel32 for optional relocations (calls and static addresses may
# take a longer encoding than in a normal run: counts are close to, not identical with, the code a normal run executes).
# Same process state for both variants (h94, STEADY=1, the default): tracing on allocates its rings' object arrays (512 KB
# each, the large-object heap) and so caused a garbage collection that the off run, which allocates little, never reached
# before it ended; until a process's first collection .NET's GC write barrier takes a shorter path (7 instructions per
# reference store in ForkJoin, against 12-14 after it), so every reference store of the kernel counted as dearer with
# tracing on (ForkJoin: 60 of the 335 instructions tracing "added"). DOTNET_GCgen0size=0x400000 (4 MB) makes every run
# collect at a steady rate, with tracing off and on, and the loop driver collects once after the warm-up
# (EIOSHARP_BENCH_GC_AFTER_WARMUP=1): a row that allocates nothing never reached a collection with tracing off, but did
# with it on (FiberYield(1): the barrier path 42 instructions per op before the first collection, 128 after). And each invocation is a new domain (EioMain.Run), whose ring comes
# from a pool that fills only once 8 finished domains are kept (EioTrace: MaxRetiredKept): before that, each new ring
# allocated its 512 KB object array on the large-object heap, and the extra invocation of the 2C run then also counted
# that allocation and the full collections it brought (PromisePingPong on: 218 B/op instead of 192, a gen-2 collection in
# the 2C run only). So every row warms up over 10 invocations, and the counted ones reuse rings, as a long run does.
# STEADY=0 measures as session 14 did (no GCgen0size, each row's own warm-up).
# Output: a table per row with the median (of ROUNDS) instructions per op off and on, and on / off.
# Usage: bench/trace-overhead-instructions.sh      STEADY=1 ROUNDS=3 OUT=bench/results/trace-instructions JOBS=2 NO_BUILD=1
#        DLL=path/to/EioSharp.Benchmarks.dll (default: this tree's Release build) ROWS='regex' (rows to run, by name)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
JOBS=${JOBS:-2}
OUT=${OUT:-$ROOT/bench/results/trace-instructions}
DLL=${DLL:-$ROOT/bench/EioSharp.Benchmarks/bin/Release/net10.0/EioSharp.Benchmarks.dll}
ROWS=${ROWS:-.}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install -y valgrind)" >&2; exit 1; }
if [ -z "${NO_BUILD:-}" ]; then
  nice dotnet build "$ROOT/bench/EioSharp.Benchmarks/EioSharp.Benchmarks.csproj" -c Release -v q -nologo >/dev/null
fi
mkdir -p "$OUT"
export EIOSHARP_BENCH_JOB=cli DOTNET_TieredCompilation=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 \
  DOTNET_JitEnableOptionalRelocs=0
STEADY=${STEADY:-1}
if [ "$STEADY" = 1 ]; then
  export DOTNET_GCgen0size=0x400000 EIOSHARP_BENCH_GC_AFTER_WARMUP=1
  # The loop driver of a build before h94 ignores EIOSHARP_BENCH_GC_AFTER_WARMUP: its off rows would then count the
  # shorter write barrier. Give it this tree's driver (only Program.cs differs): copy this tree's
  # bench/EioSharp.Benchmarks/bin/Release/net10.0/EioSharp.Benchmarks.dll over the base build's.
  if ! python3 -c 'import sys; sys.exit(0 if "EIOSHARP_BENCH_GC_AFTER_WARMUP".encode("utf-16-le") in open(sys.argv[1], "rb").read() else 1)' "$DLL"; then
    echo "$DLL: its loop driver has no EIOSHARP_BENCH_GC_AFTER_WARMUP (a build before h94); copy this tree's EioSharp.Benchmarks.dll over it, or run with STEADY=0" >&2
    exit 1
  fi
fi

# "CLASS METHOD WARMUP C [Prop=Value]": WARMUP and C are invocations (each of OperationsPerInvoke operations).
BENCHES=(
  "CoreForkJoin ForkJoin 2 4"
  "CoreForkJoin ForkJoinYielding 2 4"
  "CorePromisePingPong PromisePingPong 2 2"
  "CoreQueue AsyncQueue 1 1 Capacity=0"
  "CoreQueue AsyncQueue 1 1 Capacity=100"
  "CoreYield FiberYield 1 1 Fibers=1"
  "CoreYield FiberYield 1 1 Fibers=1000"
  "CoreFirst FirstAsync 2 2"
)

# One valgrind run: prints "<instructions> <ops>".
measure() { # trace class method warmup count [props]
  local trace=$1; shift
  local cls=$1 method=$2 warmup=$3 count=$4; shift 4
  local log
  log=$(EIOSHARP_BENCH_TRACE=$trace nice valgrind --tool=cachegrind --cache-sim=no --branch-sim=no \
      --cachegrind-out-file=/dev/null dotnet "$DLL" loop "$cls" "$method" "$warmup" "$count" "$@" 2>&1)
  local ir ops
  ir=$(sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' <<<"$log" | tr -d ,)
  ops=$(sed -n 's/.* ops=\([0-9.]*\) .*/\1/p' <<<"$log")
  if [ -z "$ir" ] || [ -z "$ops" ]; then
    echo "run failed: trace=$trace $cls $method $warmup $count $*" >&2
    echo "$log" | tail -20 >&2
    return 1
  fi
  # The loop's own line (its GC counts show whether both variants ran in the same GC state).
  echo "trace=$trace count=$count $(grep ' ops=' <<<"$log")" >>"$OUT/loops.txt"
  echo "$ir $ops"
}

# All runs are independent (instruction counts do not depend on the load), so JOBS of them run at once.
: >"$OUT/runs.txt"
: >"$OUT/loops.txt"
tasks=()
for round in $(seq 1 "$ROUNDS"); do
  for b in "${BENCHES[@]}"; do
    read -r cls method warmup c props <<<"$b"
    [ "$STEADY" = 1 ] && warmup=10
    grep -Eq "$ROWS" <<<"$cls.$method($props)" || continue
    for trace in 0 1; do
      for mult in 1 2; do
        tasks+=("$round|$trace|$mult|$cls|$method|$warmup|$((c * mult))|$props")
      done
    done
  done
done

run_task() {
  IFS='|' read -r round trace mult cls method warmup count props <<<"$1"
  local res
  # shellcheck disable=SC2086
  res=$(measure "$trace" "$cls" "$method" "$warmup" "$count" $props) || return 1
  echo "$round $trace $mult $cls.$method${props:+($props)} $res" >>"$OUT/runs.txt"
}
export -f measure run_task
export DLL OUT
printf '%s\n' "${tasks[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_task "$@"' _ {}

python3 - "$OUT/runs.txt" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    rnd, trace, mult, key, ir, ops = line.split()
    runs.setdefault(key, {}).setdefault(trace, {}).setdefault(rnd, {})[mult] = (int(ir), float(ops))
print("| Benchmark | off instr/op | on instr/op | on / off | off, each round | on, each round |")
print("|---|---:|---:|---:|---|---|")
for key, by_trace in runs.items():
    per = {}
    for trace, rounds in by_trace.items():
        vals = []
        for rnd, d in sorted(rounds.items()):
            if "1" in d and "2" in d:
                (i1, o1), (i2, o2) = d["1"], d["2"]
                vals.append((i2 - i1) / (o2 - o1))
        per[trace] = vals
    off, on = per.get("0", []), per.get("1", [])
    mo = statistics.median(off) if off else None
    mn = statistics.median(on) if on else None
    ratio = f"{mn / mo:.3f}" if mo and mn else "-"
    fmt = lambda v: f"{v:,.0f}" if v is not None else "-"
    print(f"| {key} | {fmt(mo)} | {fmt(mn)} | {ratio} | {', '.join(f'{v:,.0f}' for v in off)} | {', '.join(f'{v:,.0f}' for v in on)} |")
PY
