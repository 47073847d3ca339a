#!/usr/bin/env bash
# Instructions per operation of EioSharp.Kv's store running scripts in process (bench/EioSharp.Kv.ScriptBench), counted
# by valgrind (cachegrind, no cache or branch simulation; every thread): a figure the machine's load does not move, where
# CPU time per op on the shared VM varies by +-30%. Each build runs twice, with OPS=N and 2N (one timed round, warm-up
# OPS/4): the difference of the two totals is 1.25 N operations with start-up, JIT and shutdown removed.
# CAVEAT (see bench/trace-overhead-instructions.sh): under valgrind CoreCLR runs MinOpts code, so the managed share is of
# unoptimised code; the native share (Lua, libc's allocator) is exact.
#
#   bench/kv-script-instructions.sh BUILD_DIR ...    # dirs holding EioSharp.Kv.Core.dll
#
# Environment: WORKLOADS ("evalsha lua-tables"), N (4000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKLOADS="${WORKLOADS:-evalsha lua-tables}"; N="${N:-4000}"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
nice dotnet build "$ROOT/bench/EioSharp.Kv.ScriptBench/EioSharp.Kv.ScriptBench.csproj" -c Release -v q -nologo >/dev/null
BIN="$ROOT/bench/EioSharp.Kv.ScriptBench/bin/Release/net10.0"
WORK="$(mktemp -d /tmp/kv-script-instr.XXXXXX)"; trap 'rm -rf "$WORK"' EXIT
export DOTNET_TieredCompilation=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0
count() { # dir workload ops
  nice valgrind --tool=cachegrind --cache-sim=no --branch-sim=no --cachegrind-out-file=/dev/null \
    dotnet "$1/EioSharp.Kv.ScriptBench.dll" "$2" "$3" 1 2>&1 >/dev/null | awk '/I *refs:/ { gsub(",", "", $NF); print $NF }'
}
for i in $(seq 1 $#); do
  dir="${!i}"; mkdir -p "$WORK/$i"; cp -r "$BIN"/. "$WORK/$i/"; cp "$dir/EioSharp.Kv.Core.dll" "$WORK/$i/"
done
for w in $WORKLOADS; do
  for i in $(seq 1 $#); do
    dir="${!i}"
    a=$(count "$WORK/$i" "$w" "$N"); b=$(count "$WORK/$i" "$w" $((2 * N)))
    echo "$w build=$dir instructions_per_op=$(( (b - a) * 4 / (5 * N) )) (totals $a $b)"
  done
done
