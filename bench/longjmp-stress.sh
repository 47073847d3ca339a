#!/usr/bin/env bash
# Session 25 (h155): runs ScriptBench's longjmp-stress mode RUNS times and counts crashes (the CI's rare Kv.Tests host
# crash, suspect 1: Lua errors longjmp over managed frames while the GC runs). Each run has .NET's crash report on
# (mini dump + *.crashreport.json in OUT); a crash's summary (scripts/crash-summary.py) is printed, the dump deleted.
#
#   bench/longjmp-stress.sh [RUNS=5] [SECONDS=60] [SCRIPT_THREADS=4] [GC_THREADS=2] [errors|errors:I,J|ok]
#
# Environment: SCRIPTBENCH_DLL (default: this tree's build, built first; NO_BUILD=1 skips the build), OUT (a new
# /tmp/longjmp-stress.XXXXXX), KEEP_DUMPS=1 keeps the .dmp files; anything else (DOTNET_gcServer=1,
# DOTNET_TieredCompilation=0, DOTNET_gcConcurrent=0) passes through. Prints "crashes=C wrong=W stuck=S of RUNS runs" (wrong:
# the program exited 3, a script gave an unexpected reply; stuck: exit 4, a script thread had not returned 30 s after
# the end; crashes: any other exit, including the timeout's SIGKILL 120 s after the end). Exit 0.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-5}"; SECONDS_EACH="${2:-60}"; SCRIPT_THREADS="${3:-4}"; GC_THREADS="${4:-2}"; KIND="${5:-errors}"
DLL="${SCRIPTBENCH_DLL:-$ROOT/bench/EioSharp.Kv.ScriptBench/bin/Release/net10.0/EioSharp.Kv.ScriptBench.dll}"
if [ -z "${SCRIPTBENCH_DLL:-}" ] && [ "${NO_BUILD:-0}" != 1 ]; then
  nice dotnet build "$ROOT/bench/EioSharp.Kv.ScriptBench/EioSharp.Kv.ScriptBench.csproj" -c Release -v q -nologo >/dev/null || exit 1
fi
OUT="${OUT:-$(mktemp -d /tmp/longjmp-stress.XXXXXX)}"; mkdir -p "$OUT"
crashes=0
wrong=0
stuck=0
for r in $(seq 1 "$RUNS"); do
  DOTNET_DbgEnableMiniDump=1 DOTNET_DbgMiniDumpType=1 DOTNET_EnableCrashReport=1 DOTNET_DbgMiniDumpName="$OUT/run$r.%p.dmp" \
    timeout -s KILL $((SECONDS_EACH + 120)) dotnet "$DLL" longjmp-stress "$SECONDS_EACH" "$SCRIPT_THREADS" "$GC_THREADS" "$KIND" \
    >"$OUT/run$r.log" 2>&1
  rc=$?
  if [ "$rc" = 0 ]; then
    echo "run $r: ok: $(tail -1 "$OUT/run$r.log")"
  elif [ "$rc" = 4 ]; then
    stuck=$((stuck + 1))
    echo "run $r: STUCK (exit 4): $(grep -E '^STUCK' "$OUT/run$r.log" | head -4 | tr '\n' ' ')"
    grep "^FAILURE" "$OUT/run$r.log" | head -5
  elif [ "$rc" = 3 ]; then
    wrong=$((wrong + 1))
    echo "run $r: WRONG REPLIES (exit 3): $(tail -1 "$OUT/run$r.log")"
    grep "^FAILURE" "$OUT/run$r.log" | head -5
  else
    crashes=$((crashes + 1))
    echo "run $r: EXIT $rc after $(grep -c ' s: scripts=' "$OUT/run$r.log") progress lines; last: $(grep ' s: scripts=' "$OUT/run$r.log" | tail -1)"
    grep -E "^(FAILURE|Fatal|Unhandled|Process terminated|   at )" "$OUT/run$r.log" | head -20
    python3 "$ROOT/scripts/crash-summary.py" "$OUT"/run$r.*.crashreport.json 2>/dev/null
  fi
  [ "${KEEP_DUMPS:-0}" = 1 ] || rm -f "$OUT"/run$r.*.dmp
done
echo "longjmp-stress $KIND: crashes=$crashes wrong=$wrong stuck=$stuck of $RUNS runs of ${SECONDS_EACH} s ($SCRIPT_THREADS script threads, $GC_THREADS GC threads; gcServer=${DOTNET_gcServer:-default} TieredCompilation=${DOTNET_TieredCompilation:-default} gcConcurrent=${DOTNET_gcConcurrent:-default}; logs in $OUT)"
