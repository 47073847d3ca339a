#!/usr/bin/env bash
# Bytes (exact) and CPU per FirstAsync race, base vs new build, with the .NET baselines, in one run (issue 20, session 15).
#   bench/race-alloc.sh BASE_BENCH_DIR NEW_BENCH_DIR [ROUNDS=3]
# Each dir holds EioSharp.Benchmarks.dll. Rows: FirstAsync on base and new (alternating, ROUNDS each, tiered/PGO as
# BenchmarkDotNet runs it), the same at FullOpts (DOTNET_TieredCompilation=0, as the valgrind scripts run), and the two .NET
# rows from the new build (WhenAnyLinkedCts, and WhenAnyLinkedCtsAsyncLambdas: both sides async lambdas, like FirstAsync).
# alloc_b_per_op is GC.GetTotalAllocatedBytes(precise) per race: exact, load-independent. CPU/wall are noise under load.
set -euo pipefail
base="$1"; new="$2"; rounds="${3:-3}"
run() { EIOSHARP_BENCH_JOB=cli nice dotnet "$1/EioSharp.Benchmarks.dll" loop CoreFirst "$2" 5 20; }
for r in $(seq "$rounds"); do
  echo "base  $(run "$base" FirstAsync)"
  echo "new   $(run "$new" FirstAsync)"
done
echo "base FullOpts $(DOTNET_TieredCompilation=0 run "$base" FirstAsync)"
echo "new  FullOpts $(DOTNET_TieredCompilation=0 run "$new" FirstAsync)"
echo ".NET  $(run "$new" WhenAnyLinkedCts)"
echo ".NET  $(run "$new" WhenAnyLinkedCtsAsyncLambdas)"
