#!/usr/bin/env bash
# Start-up load time of a multi-part AOF directory (issue 13/14, branch h53): redis-server 7.0.15 writes an
# appendonlydir with N keys (redis-benchmark SET, 16-byte values) and rewrites it (base .rdb with aof-use-rdb-preamble
# yes, .aof with no); then redis-server and EioSharp.Kv each start on a copy, and the time from the process start until
# it answers PING with PONG (not -LOADING) is measured. Usage: bench/aof-load.sh [keys] [runs]
set -euo pipefail
KEYS=${1:-1000000}
RUNS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DLL=$ROOT/apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll
[ -f "$DLL" ] || nice dotnet build "$ROOT/apps/EioSharp.Kv" -c Release >/dev/null
WORK=$(mktemp -d /tmp/aof-load.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_pong() { # port start_ns -> ms until PONG
  local p=$1 t0=$2
  until [ "$(redis-cli -p "$p" ping 2>/dev/null)" = "PONG" ]; do sleep 0.01; done
  echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for preamble in yes no; do
  src=$WORK/src-$preamble; mkdir -p "$src"
  p=$(port)
  redis-server --port "$p" --bind 127.0.0.1 --dir "$src" --save '' --appendonly yes --aof-use-rdb-preamble $preamble >/dev/null &
  rpid=$!
  until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.05; done
  redis-benchmark -p "$p" -t set -n "$KEYS" -r "$KEYS" -d 16 -P 64 -q >/dev/null
  redis-cli -p "$p" bgrewriteaof >/dev/null
  until redis-cli -p "$p" info persistence | grep -q 'aof_rewrite_in_progress:0'; do sleep 0.1; done
  sleep 1
  dbsize=$(redis-cli -p "$p" dbsize)
  kill "$rpid"; wait "$rpid" || true
  size=$(du -sb "$src/appendonlydir" | cut -f1)
  for server in redis kv; do
    times=()
    for r in $(seq "$RUNS"); do
      d=$WORK/run-$server-$preamble-$r; mkdir -p "$d"; cp -r "$src/appendonlydir" "$d/"
      p=$(port); t0=$(date +%s%N)
      if [ $server = redis ]; then
        nice redis-server --port "$p" --bind 127.0.0.1 --dir "$d" --save '' --appendonly yes >/dev/null & pid=$!
      else
        nice dotnet "$DLL" --port "$p" --dir "$d" --appendonly yes >/dev/null 2>&1 & pid=$!
      fi
      ms=$(wait_pong "$p" "$t0")
      got=$(redis-cli -p "$p" dbsize)
      [ "$got" = "$dbsize" ] || { echo "$server loaded $got keys, expected $dbsize" >&2; exit 1; }
      kill "$pid"; wait "$pid" 2>/dev/null || true
      rm -rf "$d"
      times+=("$ms")
    done
    echo "preamble=$preamble keys=$dbsize dir_bytes=$size server=$server load_ms=${times[*]} median=$(printf '%s\n' "${times[@]}" | median)"
  done
done
