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
CLIENTS=${CLIENTS:-50}; N=${N:-100000}
[ $# -gt 0 ] || { sed -n '2,8p' "$0"; exit 2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
for target in "$@"; do
  port=$(free_port); dir=$(mktemp -d /tmp/kv-req-sys.XXXXXX)
  envs=""; dll=$target
  case "$target" in *@*) envs=${target%@*}; envs=${envs//,/ }; dll=${target##*@} ;; esac
  # shellcheck disable=SC2086
  env $envs dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$dir/data" >"$dir/log" 2>&1 &
  pid=$!
  for _ in $(seq 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
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
