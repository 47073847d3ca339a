#!/usr/bin/env bash
# Inclusive instructions per call of named server functions during the BLPOP/LPUSH ping-pong (issue 12), from one
# callgrind window with the call graph kept: where bench/kv-pingpong-instructions.sh gives window totals (which move
# with JIT and timer work in the window), this gives the cost of each call of the functions a change touches, and
# their call counts, which do not.
#
#   bench/kv-pingpong-calls.sh BUILD_DIR ...      # dirs holding EioSharp.Kv.dll
#
# Per build: the server starts under callgrind (epoll backend, AOF on, the runtime settings of
# bench/lib/callgrind-windows.sh), WARMUP round trips run, the counters are zeroed, ROUNDS round trips run, the counters
# are dumped; then for each of FUNCS (substrings of the JIT names of the perf map) the calls and instructions per call
# are printed (from `callgrind_annotate --tree=calling`). Environment: ROUNDS (1000), WARMUP (1500), LOADGEN_DLL, KEEP
# (a directory to keep the dumps in), FUNCS (default below).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-1000}"; WARMUP="${WARMUP:-1500}"
LOADGEN_DLL="${LOADGEN_DLL:-$ROOT/bench/EioSharp.Kv.LoadGen/bin/Release/net10.0/EioSharp.Kv.LoadGen.dll}"
FUNCS="${FUNCS:-KvStore::HandleReadyKeys KvStore::ExecuteBatch KvStore::TryPopList KvStore::PushList KvStore::EndBlock KvServerStats::UpdateFrom Domain::RunRound}"
[ $# -gt 0 ] || { sed -n '2,14p' "$0"; exit 2; }
WORK="${KEEP:-$(mktemp -d /tmp/kv-pp-calls.XXXXXX)}"; mkdir -p "$WORK"; SPID=""
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; [ -z "${KEEP:-}" ] && rm -rf "$WORK"; return 0; }
trap cleanup EXIT INT TERM
for build in "$@"; do
  out="$WORK/$(basename "$build").$$"; mkdir -p "$out/data"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  (cd "$out" && exec env DOTNET_TieredPGO=0 DOTNET_TC_CallCountingDelayMs=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 \
    DOTNET_JitEnableOptionalRelocs=0 DOTNET_PerfMapEnabled=1 DOTNET_PerfMapIgnoreSignal=1 \
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.out.%p" dotnet "$build/EioSharp.Kv.dll" --port "$port" \
    --bind 127.0.0.1 --dir "$out/data" --appendonly yes --backend epoll >"$out/server.log" 2>&1) &
  SPID=$!
  for _ in $(seq 1 3600); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; kill -0 "$SPID" || exit 1; sleep 0.5; done
  dotnet "$LOADGEN_DLL" pingpong --port "$port" --rounds "$WARMUP" --timeout 600 >/dev/null
  callgrind_control -z "$SPID" >/dev/null
  dotnet "$LOADGEN_DLL" pingpong --port "$port" --rounds "$ROUNDS" --timeout 900 >/dev/null
  callgrind_control -d "$SPID" >/dev/null
  pid=$SPID; kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=""
  python3 - "$out/cg.out.$pid.1" "/tmp/perf-$pid.map" "$ROUNDS" "$build" $FUNCS <<'PY' || true
import bisect, re, subprocess, sys, glob
dump, pmap, rounds, build, funcs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
ents = []
for line in open(pmap, errors="replace"):
    p = line.rstrip("\n").split(" ", 2)
    if len(p) == 3: ents.append((int(p[0], 16), int(p[1], 16), p[2]))
ents.sort(); starts = [e[0] for e in ents]
def name(s):
    a = re.search(r"0x([0-9a-f]{16})", s)
    if a and "[???]" in s:
        x = int(a.group(1), 16); i = bisect.bisect_right(starts, x) - 1
        if i >= 0 and x < ents[i][0] + ents[i][1]: return s.replace(a.group(0), ents[i][2])
    return s
lines = [name(l) for l in subprocess.run(["callgrind_annotate", "--tree=calling", "--threshold=100", dump], capture_output=True, text=True).stdout.splitlines() if ">" in l]
print(f"== {build}: per call (calls per round trip)")
for f in funcs:
    tot = calls = 0
    for l in lines:
        if f in l:
            m = re.match(r"\s*([\d,]+).*\(([\d,]+)x\)", l)
            if m: tot += int(m.group(1).replace(",", "")); calls += int(m.group(2).replace(",", ""))
    print(f"{f:40s} {tot / calls if calls else 0:10.0f} ({calls / rounds:.2f})")
PY
done
