#!/usr/bin/env bash
# Where an in-process EVALSHA's instructions go, per shared object and per function, for several builds (issue 12):
# bench/EioSharp.Kv.ScriptBench runs under callgrind (FullOpts, DOTNET_ReadyToRun=0 so that the perf map names every
# managed function, framework code included) with OPS and 2*OPS calls; the difference of the two dumps, per function or
# object, divided by 1.25*OPS (the warm-up is OPS/4) is the cost of one call with start-up and JIT removed.
#
#   bench/kv-script-calls.sh BUILD_DIR ...     # dirs holding EioSharp.Kv.Core.dll
#
# Environment: WORKLOAD (evalsha-aof; or evalsha, lua-tables), OPS (4000), TOP (40 functions), CALLERS (function-name
# substrings whose callees to list, default "ScriptHost::Call( ScriptHost::Run("), KEEP (a directory for the dumps).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKLOAD="${WORKLOAD:-evalsha-aof}"; OPS="${OPS:-4000}"; TOP="${TOP:-40}"
CALLERS="${CALLERS:-ScriptHost::Call( ScriptHost::Run(}"
[ $# -gt 0 ] || { sed -n '2,12p' "$0"; exit 2; }
nice dotnet build "$ROOT/bench/EioSharp.Kv.ScriptBench/EioSharp.Kv.ScriptBench.csproj" -c Release -v q -nologo >/dev/null
BIN="$ROOT/bench/EioSharp.Kv.ScriptBench/bin/Release/net10.0"
WORK="${KEEP:-$(mktemp -d /tmp/kv-script-calls.XXXXXX)}"; mkdir -p "$WORK"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
export DOTNET_ReadyToRun=0 DOTNET_TieredCompilation=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 \
  DOTNET_JitEnableOptionalRelocs=0 DOTNET_PerfMapEnabled=1 DOTNET_PerfMapIgnoreSignal=1
div=$(( OPS * 5 / 4 ))
i=0
for dir in "$@"; do
  i=$((i + 1)); d="$WORK/$i"; mkdir -p "$d/bin"; cp -r "$BIN"/. "$d/bin/"; cp "$dir/EioSharp.Kv.Core.dll" "$d/bin/"
  for k in 1 2; do
    nice valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$d/cg.$k" \
      dotnet "$d/bin/EioSharp.Kv.ScriptBench.dll" "$WORKLOAD" $((OPS * k)) 1 >"$d/log.$k" 2>&1 &
    p=$!; wait $p; cp "/tmp/perf-$p.map" "$d/map.$k"
  done
  echo "== $WORKLOAD build=$dir (per call)"
  python3 "$ROOT/bench/lib/callgrind-diff-objects.py" "$d/cg.1" "$d/map.1" "$d/cg.2" "$d/map.2" "$div" | head -12
  python3 "$ROOT/bench/lib/callgrind-diff-functions.py" "$d/cg.1" "$d/map.1" "$d/cg.2" "$d/map.2" "$div" "$TOP" | tail -n +2
  for c in $CALLERS; do
    echo "-- callees of $c"
    python3 "$ROOT/bench/lib/callgrind-diff-callees.py" "$d/cg.1" "$d/map.1" "$d/cg.2" "$d/map.2" "$div" "$c"
  done
done
