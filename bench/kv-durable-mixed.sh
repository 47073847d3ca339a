#!/usr/bin/env bash
# A reader's latency beside durable writers: 50 clients SET with fsync per write (appendfsync always) run in the
# background while one client sends GETs; the reader's latency percentiles (redis-benchmark --csv) and the writers'
# SETs per second, for each server, servers alternating in every round. It shows what a durable write path costs the
# other clients of the server (e.g. a reader held while the store's domain waits for its writers or its fsync).
#
#   SERVERS="redis kvbase kv"  KV_DLL=...  KV_BASE_DLL=...  ROUNDS=3  READS=3000  WARM=3 (seconds)  KV_ENV / KV_BASE_ENV
# Loopback only; every server is started on a free port and stopped by its PID.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SERVERS=${SERVERS:-"redis kvbase kv"}
KV_DLL=${KV_DLL:-"$ROOT/apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll"}
KV_BASE_DLL=${KV_BASE_DLL:-$KV_DLL}
ROUNDS=${ROUNDS:-3}; READS=${READS:-3000}; WARM=${WARM:-3}
source "$ROOT/bench/lib/servers.sh" kv-durable-mixed

start() { # server dir -> PORT, PID
  local dir="$WORK/$2"; mkdir -p "$dir"; PORT=$(free_port)
  case "$1" in
    redis) redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly yes --appendfsync always \
             --daemonize no --logfile "$dir/log" & ;;
    kv|kvbase)
      local dll=$KV_DLL envs=${KV_ENV:-}; [ "$1" = kvbase ] && { dll=$KV_BASE_DLL; envs=${KV_BASE_ENV:-}; }
      # shellcheck disable=SC2086
      env $envs dotnet "$dll" --port "$PORT" --bind 127.0.0.1 --dir "$dir/data" --appendfsync always >"$dir/log" 2>&1 & ;;
  esac
  PID=$!; PIDS+=("$PID"); wait_ping "$PORT"
}

echo "round server writers_set_per_s get_avg_ms get_p50_ms get_p99_ms get_max_ms"
for r in $(seq 1 "$ROUNDS"); do
  for s in $SERVERS; do
    start "$s" "$s-$r"
    redis-benchmark -p "$PORT" -c 50 -n 100000000 -t set -r 100000 -d 16 -q >/dev/null 2>&1 & wpid=$!
    sleep "$WARM"
    before=$(redis-cli -p "$PORT" info stats | awk -F: '/^total_commands_processed/ {print $2+0}')
    t0=$(date +%s.%N)
    line=$(redis-benchmark -p "$PORT" -c 1 -n "$READS" -t get -r 100000 --csv | tail -1)
    t1=$(date +%s.%N)
    after=$(redis-cli -p "$PORT" info stats | awk -F: '/^total_commands_processed/ {print $2+0}')
    kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null || true
    kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true
    python3 - "$r" "$s" "$before" "$after" "$t0" "$t1" "$READS" "$line" <<'PY'
import sys
r, s, b, a, t0, t1, reads, line = sys.argv[1:]
f = [x.strip('"') for x in line.split(',')]
# "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
sets = (int(a) - int(b) - int(reads) - 1) / (float(t1) - float(t0))
print(r, s, f"{sets:.0f}", f[2], f[4], f[6], f[7])
PY
  done
done
