#!/usr/bin/env bash
# Fiber-tracing overhead on the core micro-benchmarks (bench/EioSharp.Benchmarks, '*Core*'):
#   base = the kernel before tracing (commit $BASE, built in a separate worktree),
#   off  = this tree, tracing off (the default),
#   on   = this tree, tracing on (EIOSHARP_BENCH_TRACE=1: EioTrace.Start() recording into the rings).
# Runs base/off/on back to back ROUNDS times (interleaved, so machine load hits all three alike) and prints, per
# benchmark, the median Mean of each variant and the ratios off/base and on/off.
# In-process toolchain (--inProcess): no per-benchmark project build, which timed out on the shared machine.
# Usage: bench/trace-overhead.sh [BASE-COMMIT]   (default: the merge-base with main)   ROUNDS=1 FILTER='*Core*' (space-separated globs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BASE=${1:-$(git merge-base HEAD main)}
ROUNDS=${ROUNDS:-1}
FILTER=${FILTER:-*CoreForkJoin.ForkJoin *CoreForkJoin.ForkJoinYielding *CorePromisePingPong.PromisePingPong *CoreYield.FiberYield *CoreQueue.AsyncQueue}
OUT=${OUT:-$ROOT/bench/results/trace-overhead}
WT=$(mktemp -d /tmp/eio-trace-base.XXXXXX)
cleanup() { git -C "$ROOT" worktree remove --force "$WT" >/dev/null 2>&1 || true; }
trap cleanup EXIT
git worktree add --detach "$WT" "$BASE" >/dev/null
mkdir -p "$OUT"
dotnet build "$WT/bench/EioSharp.Benchmarks/EioSharp.Benchmarks.csproj" -c Release -v q -nologo >/dev/null
dotnet build "$ROOT/bench/EioSharp.Benchmarks/EioSharp.Benchmarks.csproj" -c Release -v q -nologo >/dev/null
run() { # variant dir trace
  local art="$OUT/$1-$round"
  rm -rf "$art"
  (cd "$2" && EIOSHARP_BENCH_TRACE=$3 dotnet run -c Release --no-build --project bench/EioSharp.Benchmarks -- \
      --filter $FILTER --inProcess --launchCount 1 --warmupCount 2 --iterationCount 8 --exporters csv --artifacts "$art" >"$art.log" 2>&1)
}
for round in $(seq 1 "$ROUNDS"); do
  run base "$WT" 0
  run off "$ROOT" 0
  run on "$ROOT" 1
done
python3 "$ROOT/bench/trace-overhead-summary.py" "$OUT"
