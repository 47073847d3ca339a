#!/usr/bin/env bash
# Fiber resumes per BLPOP/LPUSH ping-pong round trip (issue 12, session 22, h138), counted from the library's fiber trace,
# as bench/kv-p1-trace-counts.sh counts them per unpipelined request: for each TARGET (a directory or path of
# EioSharp.Kv.dll), one fresh server (its defaults: AOF everysec, the default backend; plus --enable-debug-command local),
# warmed with WARM round trips, then `DEBUG TRACE START` .. N round trips (bench/EioSharp.Kv.LoadGen pingpong) ..
# `DEBUG TRACE STOP`; the trace's fiber run slices ("X", cat fiber: one per resume of a fiber) and suspensions are
# counted per round trip (four requests: A LPUSH ping, BLPOP pong; B BLPOP ping, LPUSH pong), by fiber name and by
# reason ("blocks" = BLPOPs that blocked: from the blocked-read watcher fiber's two runs per block in builds before
# session 23, from the connection's queue waits since h144, whose watcher has no fiber). A count of scheduler work,
# not of time: the machine's load does not move it much (tracing slows the server, so how often a BLPOP finds its list
# already filled may differ a little from an untraced run).
#
#   bash bench/kv-pingpong-trace-counts.sh TARGET ...
#
# A round trip leaves ~55-75 trace events and each domain's trace ring keeps 65,536 (EioTrace.RingCapacity): keep N
# at or below ~800, or a slow writer drops events and every count comes out low (N=3000 under load did).
# Environment: N (600 round trips), WARM (5000), REPEATS (1: runs per target, alternating), LOADGEN_DLL, KV_ARGS, KV_ENV.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N=${N:-600}; WARM=${WARM:-5000}; REPEATS=${REPEATS:-1}
LOADGEN_DLL="${LOADGEN_DLL:-$ROOT/bench/EioSharp.Kv.LoadGen/bin/Release/net10.0/EioSharp.Kv.LoadGen.dll}"
[ $# -gt 0 ] || { sed -n '2,18p' "$0"; exit 2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
for rep in $(seq 1 "$REPEATS"); do
for target in "$@"; do
  dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
  PORT=$(free_port); D=$(mktemp -d /tmp/kv-pp-trace-counts.XXXXXX)
  # shellcheck disable=SC2086
  env ${KV_ENV:-} dotnet "$dll" --port "$PORT" --bind 127.0.0.1 --dir "$D/data" --enable-debug-command local ${KV_ARGS:-} >"$D/log" 2>&1 &
  PID=$!
  for _ in $(seq 1 600); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  dotnet "$LOADGEN_DLL" pingpong --port "$PORT" --rounds "$WARM" --timeout 600 >/dev/null
  redis-cli -p "$PORT" DEBUG TRACE START "$D/t.json" >/dev/null
  dotnet "$LOADGEN_DLL" pingpong --port "$PORT" --rounds "$N" --timeout 600 >/dev/null
  redis-cli -p "$PORT" DEBUG TRACE STOP >/dev/null
  python3 - "$D/t.json" "$N" "$target pingpong" <<'PY'
import json, sys, collections, re
events = json.load(open(sys.argv[1]))["traceEvents"]
n = int(sys.argv[2])
runs = collections.Counter(); susp = collections.Counter()
for e in events:
    if e.get("ph") == "X" and e.get("cat") == "fiber":
        runs[re.sub(r" #\d+$", "", e["name"])] += 1
    elif e.get("ph") == "b" and e.get("cat") == "suspended":
        susp[e["args"].get("reason", "?")] += 1
total = sum(runs.values())
top = ", ".join(f"{k} {v / n:.3f}" for k, v in runs.most_common(8))
s = ", ".join(f"{k} {v / n:.3f}" for k, v in susp.most_common(8))
if "kv-connection-blocked-read" in runs:
    blocks = runs["kv-connection-blocked-read"] / 2 / n  # builds before h144: the watcher fiber runs twice per block
else:
    blocks = susp.get("queue", 0) / n  # h144 on: the connection's wait on its block events is the only queue wait
print(f"{sys.argv[3]}: blocks/round trip {blocks:.2f}, fiber runs/round trip {total / n:.3f} [{top}] suspensions/round trip [{s}]")
PY
  kill "$PID"; wait "$PID" 2>/dev/null; rm -rf "$D"
done
done
