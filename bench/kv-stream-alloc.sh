#!/usr/bin/env bash
# Managed bytes allocated per stream message by EioSharp.Kv builds on bench/kv-features.sh's stream row (LoadGen: 2
# producers XADD, 2 consumers XREADGROUP COUNT 10 BLOCK 1000 + XACK), with the requests per message and the blocks per
# message that made them: a count the machine's load does not move much (the batching, and so the blocks, still do).
# Per build: a server (--appendonly yes --appendfsync everysec --save "" unless KV_ARGS adds otherwise), a warm-up of
# WARMUP messages, then MESSAGES messages between two reads of MEMORY MALLOC-STATS "Allocated since start" (all threads)
# and of INFO commandstats / INFO stats. Builds alternate, REPEATS rounds.
#
#   bench/kv-stream-alloc.sh KV_DLL_OR_DIR ...      # env: MESSAGES (20000), WARMUP (5000), REPEATS (2), KV_ARGS, LOADGEN_DLL
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MESSAGES="${MESSAGES:-20000}"; WARMUP="${WARMUP:-5000}"; REPEATS="${REPEATS:-2}"; KV_ARGS="${KV_ARGS:-}"
LOADGEN_DLL="${LOADGEN_DLL:-$ROOT/bench/EioSharp.Kv.LoadGen/bin/Release/net10.0/EioSharp.Kv.LoadGen.dll}"
[ $# -gt 0 ] || { sed -n '2,9p' "$0"; exit 2; }
W=$(mktemp -d /tmp/kv-stream-alloc.XXXXXX); PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
alloc() { redis-cli -p "$1" MEMORY MALLOC-STATS | awk -F': ' '/^Allocated since start/ { print $2 }'; }
calls() { redis-cli -p "$1" INFO commandstats | tr -d '\r' | awk -F'[:=,]' -v c="cmdstat_$2" '$1 == c { print $3 }'; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq 1 "$REPEATS"); do
  for target in "$@"; do
    dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
    port=$(free_port); mkdir -p "$W/$port"
    # shellcheck disable=SC2086
    dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$W/$port" --appendonly yes --appendfsync everysec --save "" $KV_ARGS >"$W/$port/log" 2>&1 &
    PID=$!
    for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
    dotnet "$LOADGEN_DLL" stream --port "$port" --producers 2 --consumers 2 --count 10 --messages "$WARMUP" >/dev/null
    redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
    a=$(alloc "$port")
    dotnet "$LOADGEN_DLL" stream --port "$port" --producers 2 --consumers 2 --count 10 --messages "$MESSAGES" >/dev/null
    b=$(alloc "$port")
    xrg=$(calls "$port" xreadgroup); xack=$(calls "$port" xack)
    python3 -c "print('$target', 'bytes_per_message=%.1f' % (($b - $a) / $MESSAGES), 'xreadgroup_per_message=%.3f' % ($xrg / $MESSAGES), 'xack_per_message=%.3f' % ($xack / $MESSAGES))"
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true; PID=""
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
