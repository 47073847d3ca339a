#!/usr/bin/env bash
# Fiber-tracing overhead on the core micro-benchmarks (bench/EioSharp.Benchmarks, Core*):
#   base = the kernel before tracing (commit $BASE, built in the worktree $BASE_DIR),
#   off  = this tree, tracing off (the default),
#   on   = this tree, tracing on (EIOSHARP_BENCH_TRACE=1: EioTrace.Start() recording into the rings).
# MODE=cpu (default): each benchmark method is called directly (`EioSharp.Benchmarks loop CLASS METHOD WARMUP COUNT`),
#   and the process CPU time per operation is taken (user+sys, so GC threads count): on a loaded shared machine wall
#   time is mostly waiting for a core, CPU time is not. base/off/on run back to back per benchmark, ROUNDS times.
# MODE=bdn: BenchmarkDotNet in process (--inProcess, 2 warm-up + 8 iterations): Mean and the Allocated column.
# The base tree gets this tree's bench driver (Program.cs: the loop mode) and loses the attribute job of CoreBench (so
# that only the command-line job runs); its kernel and benchmark bodies are its own.
# Usage: bench/trace-overhead.sh [BASE-COMMIT]  (default 35587c6, the commit the tracing work started from)
#        ROUNDS=3 MODE=cpu BASE_DIR=/tmp/eio-trace-base OUT=bench/results/trace-overhead
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BASE=${1:-35587c6}
ROUNDS=${ROUNDS:-3}
MODE=${MODE:-cpu}
OUT=${OUT:-$ROOT/bench/results/trace-overhead}
BASE_DIR=${BASE_DIR:-}
if [ -z "$BASE_DIR" ]; then
  BASE_DIR=$(mktemp -d /tmp/eio-trace-base.XXXXXX)
  trap 'git -C "$ROOT" worktree remove --force "$BASE_DIR" >/dev/null 2>&1 || true' EXIT
  git worktree add --detach "$BASE_DIR" "$BASE" >/dev/null
elif [ ! -d "$BASE_DIR/.git" ] && [ ! -f "$BASE_DIR/.git" ]; then
  git worktree add --detach "$BASE_DIR" "$BASE" >/dev/null
fi
cp "$ROOT/bench/EioSharp.Benchmarks/Program.cs" "$BASE_DIR/bench/EioSharp.Benchmarks/Program.cs"
sed -i '/^\[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 8)\]$/d' "$BASE_DIR/bench/EioSharp.Benchmarks/CoreBenchmarks.cs"
if ! grep -rqs "class ProcessSpawnBench" "$BASE_DIR/bench/EioSharp.Benchmarks/"; then
  # The driver's process-spawn mode came later than the base commit: drop it from the base's copy.
  sed -i '/args\[0\] == "process-spawn"/,/^        }$/d' "$BASE_DIR/bench/EioSharp.Benchmarks/Program.cs"
fi
mkdir -p "$OUT"
for dir in "$BASE_DIR" "$ROOT"; do
  dotnet build "$dir/bench/EioSharp.Benchmarks/EioSharp.Benchmarks.csproj" -c Release -v q -nologo >/dev/null
done
export EIOSHARP_BENCH_JOB=cli
dll() { echo "$1/bench/EioSharp.Benchmarks/bin/Release/net10.0/EioSharp.Benchmarks.dll"; }

if [ "$MODE" = bdn ]; then
  FILTER=${FILTER:-*CoreForkJoin.ForkJoin *CoreForkJoin.ForkJoinYielding *CorePromisePingPong.PromisePingPong *CoreYield.FiberYield *CoreQueue.AsyncQueue *CoreFirst.FirstAsync}
  run() { # variant dir trace
    local art="$OUT/$1-$round"
    rm -rf "$art"
    (cd "$2" && EIOSHARP_BENCH_TRACE=$3 dotnet "$(dll "$2")" --filter $FILTER --inProcess --launchCount 1 \
        --warmupCount 2 --iterationCount 8 --exporters csv --artifacts "$art" >"$art.log" 2>&1)
  }
  for round in $(seq 1 "$ROUNDS"); do
    run base "$BASE_DIR" 0
    run off "$ROOT" 0
    run on "$ROOT" 1
  done
  python3 "$ROOT/bench/trace-overhead-summary.py" "$OUT"
  exit 0
fi

# MODE=cpu: "CLASS METHOD WARMUP COUNT [Prop=Value]"
BENCHES=(
  "CoreForkJoin ForkJoin 100 300"
  "CoreForkJoin ForkJoinYielding 50 150"
  "CorePromisePingPong PromisePingPong 50 100"
  "CoreQueue AsyncQueue 10 30 Capacity=0"
  "CoreQueue AsyncQueue 10 30 Capacity=100"
  "CoreYield FiberYield 10 30 Fibers=1"
  "CoreYield FiberYield 10 30 Fibers=1000"
  "CoreFirst FirstAsync 20 60"
)
: >"$OUT/cpu.txt"
for round in $(seq 1 "$ROUNDS"); do
  for b in "${BENCHES[@]}"; do
    for v in base off on; do
      dir=$ROOT; [ $v = base ] && dir=$BASE_DIR
      t=0; [ $v = on ] && t=1
      line=$(EIOSHARP_BENCH_TRACE=$t dotnet "$(dll "$dir")" loop $b)
      echo "$v $round $(uptime | sed 's/.*load average: //; s/,.*//') $line" | tee -a "$OUT/cpu.txt"
    done
  done
done
python3 - "$OUT/cpu.txt" <<'PY'
import re, statistics, sys
rows = {}
loads = []
for line in open(sys.argv[1]):
    parts = line.split()
    v, load, name = parts[0], float(parts[2]), parts[3]
    params = parts[4] if not parts[4].startswith("ops=") else ""
    key = name + (f"({params})" if params else "")
    cpu = float(re.search(r"cpu_ns_per_op=([\d.]+)", line).group(1))
    rows.setdefault(key, {}).setdefault(v, []).append(cpu)
    loads.append(load)
print(f"load average (1 min) during the runs: min {min(loads):.0f}, median {statistics.median(loads):.0f}, max {max(loads):.0f}")
print("| Benchmark | base CPU ns/op | off | on | off / base | on / off | runs |")
print("|---|---:|---:|---:|---:|---:|---:|")
for k, d in rows.items():
    m = {v: statistics.median(x) for v, x in d.items()}
    b, o, n = m.get("base"), m.get("off"), m.get("on")
    r = lambda x, y: f"{x / y:.2f}" if x and y else "-"
    print(f"| {k} | {b:.1f} | {o:.1f} | {n:.1f} | {r(o, b)} | {r(n, o)} | {len(d.get('on', []))} |")
PY
