#!/usr/bin/env bash
# System calls per request of the KV server under redis-benchmark SET+GET (session 30, h177): for each TARGET (a path of
# EioSharp.Kv.dll, or "V=x,W=y@path" for that Kv run with that environment), a fresh server (its defaults: AOF everysec),
# one unmeasured pass, then `strace -f -c` attached to the server during `redis-benchmark -c CLIENTS -n N -r 100000 -t
# set,get`; prints the calls per request (N SETs + N GETs). strace slows the server: only the counts matter.
#
#   CLIENTS=50 N=100000 bash bench/kv-request-syscalls.sh apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll
#
# Environment: CLIENTS (50), N (100000).
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENTS=${CLIENTS:-50}; N=${N:-100000}
[ $# -gt 0 ] || { sed -n '2,8p' "$0"; exit 2; }
source "$ROOT/bench/lib/servers.sh" kv-req-sys
for target in "$@"; do
  start_server "$target"
  port=$SERVER_PORT; dir=$SERVER_DIR; pid=$SERVER_PID
  redis-benchmark -p "$port" -c "$CLIENTS" -n "$N" -r 100000 -t set,get -q >/dev/null
  strace -f -c -p "$pid" -o "$dir/st" 2>/dev/null &
  sp=$!; sleep 1
  redis-benchmark -p "$port" -c "$CLIENTS" -n "$N" -r 100000 -t set,get -q >/dev/null
  kill -INT $sp; wait $sp 2>/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null
  printf '%s, %s clients: ' "$target" "$CLIENTS"
  awk -v n=$((2 * N)) 'NR > 2 && $NF != "total" && $4 + 0 > 0 && $4 / n >= 0.001 { printf "%s %.3f  ", $NF, $4 / n } END { print "" }' "$dir/st"
  rm -rf "$dir"
done
