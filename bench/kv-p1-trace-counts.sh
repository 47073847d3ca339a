#!/usr/bin/env bash
# Fiber resumes per unpipelined request (issue 14, session 21, h137), counted from the library's fiber trace: for each
# TARGET (a directory or path of EioSharp.Kv.dll), one fresh server (its defaults: AOF everysec; plus
# --enable-debug-command local), warmed with WARM SETs and GETs, then for each row (50 clients P1, 1 client; SET, GET)
# `DEBUG TRACE START` .. N requests of redis-benchmark .. `DEBUG TRACE STOP`; the trace's fiber run slices ("X", cat
# fiber: one per resume of a fiber) and suspensions are counted per request, by fiber name and by reason. A count of
# scheduler work, not of time: the machine's load does not move it (tracing slows the server, so batching may differ a
# little from an untraced run).
#
#   bash bench/kv-p1-trace-counts.sh TARGET ...
#
# Environment: N (5000 requests per row), WARM (40000), PIPELINE (1: redis-benchmark -P), ROWS ("50 1": client counts),
# TESTS ("set get"), KV_ARGS, KV_ENV.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N=${N:-5000}; WARM=${WARM:-40000}; PIPELINE=${PIPELINE:-1}; ROWS=${ROWS:-50 1}; TESTS=${TESTS:-set get}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
for target in "$@"; do
  dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
  PORT=$(free_port); D=$(mktemp -d /tmp/kv-p1-trace-counts.XXXXXX)
  # shellcheck disable=SC2086
  env ${KV_ENV:-} dotnet "$dll" --port "$PORT" --bind 127.0.0.1 --dir "$D/data" --enable-debug-command local ${KV_ARGS:-} >"$D/log" 2>&1 &
  PID=$!
  for _ in $(seq 1 600); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  redis-benchmark -p "$PORT" -n "$WARM" -r 100000 -d 16 -c 50 -t set,get -q >/dev/null 2>&1
  redis-benchmark -p "$PORT" -n "$((WARM / 4))" -r 100000 -d 16 -c 1 -t set,get -q >/dev/null 2>&1
  for c in $ROWS; do
    for t in $TESTS; do
      redis-cli -p "$PORT" DEBUG TRACE START "$D/t.$c.$t.json" >/dev/null
      redis-benchmark -p "$PORT" -n "$N" -r 100000 -d 16 -c "$c" -P "$PIPELINE" -t "$t" -q >/dev/null 2>&1
      redis-cli -p "$PORT" DEBUG TRACE STOP >/dev/null
      python3 "$ROOT/bench/lib/trace-counts.py" "$D/t.$c.$t.json" "$N" "$target c$c P$PIPELINE $t"
    done
  done
  kill "$PID"; wait "$PID" 2>/dev/null; rm -rf "$D"
done
