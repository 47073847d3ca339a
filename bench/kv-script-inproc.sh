#!/usr/bin/env bash
# In-process cost of EioSharp.Kv's scripting and stream commands, without the network and connection code: CPU time
# (process user+system) and managed bytes per operation of the store executing EVALSHA (the 3-command script of
# bench/kv-features.sh), a table-heavy script (lua-tables: Lua allocation), and the XADD + XREADGROUP + XACK cycle
# (stream; per cycle of three commands). Builds are compared by swapping their EioSharp.Kv.Core.dll under the same
# harness, alternating builds ROUNDS times; each run prints its median of 5 timed loops.
#
#   bench/kv-script-inproc.sh [BUILD_DIR ...]   # dirs holding EioSharp.Kv.Core.dll (default: this tree's Kv build)
#
# Environment: WORKLOADS ("evalsha lua-tables stream"), OPS (200000), ROUNDS (3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKLOADS="${WORKLOADS:-evalsha lua-tables stream}"; OPS="${OPS:-200000}"; ROUNDS="${ROUNDS:-3}"
DIRS=("$@"); [ ${#DIRS[@]} -gt 0 ] || DIRS=("$ROOT/apps/EioSharp.Kv/bin/Release/net10.0")
nice dotnet build "$ROOT/bench/EioSharp.Kv.ScriptBench/EioSharp.Kv.ScriptBench.csproj" -c Release -v q -nologo >/dev/null
BIN="$ROOT/bench/EioSharp.Kv.ScriptBench/bin/Release/net10.0"
WORK="$(mktemp -d /tmp/kv-script-inproc.XXXXXX)"; trap 'rm -rf "$WORK"' EXIT
for i in "${!DIRS[@]}"; do
  mkdir -p "$WORK/$i"; cp -r "$BIN"/. "$WORK/$i/"; cp "${DIRS[$i]}/EioSharp.Kv.Core.dll" "$WORK/$i/"
  # KeraLua's native library comes with the build (runtimes/); the harness's own copy is the same package.
done
for w in $WORKLOADS; do
  for r in $(seq 1 "$ROUNDS"); do
    for i in "${!DIRS[@]}"; do
      echo "$w round=$r build=${DIRS[$i]} $(dotnet "$WORK/$i/EioSharp.Kv.ScriptBench.dll" "$w" "$OPS" 5 | tail -1)"
    done
  done
done
