#!/usr/bin/env bash
# io_uring write-behind sends (session 14): one KV row, several server variants, alternating, ROUNDS rounds. Per variant
# and round: throughput, server CPU µs/request, voluntary / involuntary context switches per 1,000 requests
# (bench/kv-row-ctxsw.sh), then, in a separate run under `strace -c -f` (which slows everything: only the counts matter),
# the server's io_uring_enter / sendto / recvfrom / epoll_wait calls per request.
#
#   bash bench/kv-write-behind.sh ROUNDS TEST N VARIANTS -- REDIS-BENCHMARK-ARGS...
#   VARIANTS: space-separated NAME=DLL:BACKEND[:ENV=VALUE]  e.g.
#   bash bench/kv-write-behind.sh 3 get 100000 "base-epoll=/tmp/s13-new/kv/EioSharp.Kv.dll:epoll \
#        base-uring=/tmp/s13-new/kv/EioSharp.Kv.dll:uring new-uring=/tmp/h89-kv/EioSharp.Kv.dll:uring \
#        new-uring-off=/tmp/h89-kv/EioSharp.Kv.dll:uring:EIOSHARP_URING_WRITE_BEHIND=0" -- -c 50 -d 16
# STRACE=0 skips the strace runs. Loopback only.
set -u
cd "$(dirname "$0")/.."
ROUNDS=$1; T=$2; N=$3; VARIANTS=$4; shift 4
[ "${1:-}" = "--" ] && shift
strace_row() { # NAME DLL BACKEND ENV -- syscalls per request under strace -c -f
  local name=$1 dll=$2 be=$3 envs=$4 port d pid out
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  d=$(mktemp -d /tmp/kv-wb.XXXXXX)
  # shellcheck disable=SC2086
  env $envs dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$d/data" --backend "$be" >"$d/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
  redis-benchmark -p "$port" -n 20000 -r 100000 -t "$T" "$@" -q >/dev/null 2>&1
  strace -c -f -p "$(ls /proc/"$pid"/task | tr '\n' ',' | sed 's/,$//')" -o "$d/strace" 2>/dev/null & local spid=$! # every thread
  sleep 1
  redis-benchmark -p "$port" -n "$N" -r 100000 -t "$T" "$@" -q >/dev/null 2>&1
  kill -INT $spid; wait $spid 2>/dev/null
  kill $pid; wait $pid 2>/dev/null
  out=$(awk -v n="$N" '$NF ~ /^(io_uring_enter|sendto|recvfrom|epoll_wait|write|read|futex)$/ { printf "%s/req=%.3f ", $NF, $4/n }' "$d/strace")
  echo "strace $name $T: $out"
  rm -rf "$d"
}
for r in $(seq 1 "$ROUNDS"); do
  for v in $VARIANTS; do
    name=${v%%=*}; rest=${v#*=}
    IFS=: read -r dll be envs <<<"$rest"
    # shellcheck disable=SC2086
    echo "round=$r $name $(env ${envs:-} bash bench/kv-row-ctxsw.sh "$dll" "$be" "$T" "$N" "$@")"
  done
done
if [ "${STRACE:-1}" = 1 ]; then
  for v in $VARIANTS; do
    name=${v%%=*}; rest=${v#*=}
    IFS=: read -r dll be envs <<<"$rest"
    strace_row "$name" "$dll" "$be" "${envs:-}" "$@"
  done
fi
