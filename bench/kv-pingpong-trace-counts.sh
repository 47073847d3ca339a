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
  python3 "$ROOT/bench/lib/trace-counts.py" "$D/t.json" "$N" "$target pingpong" --unit "round trip" --top 8 8 --blocks
  kill "$PID"; wait "$PID" 2>/dev/null; rm -rf "$D"
done
done
