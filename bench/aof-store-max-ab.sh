#!/usr/bin/env bash
# A/B of the mapped AOF tail's store limit (EIOSHARP_KV_AOF_TAIL_STORE_MAX 512, the default, against 4096) on one Kv build:
# two servers side by side, alternated ROUNDS times over 400,000 1 KB -P16 SETs and 150,000 16-byte unpipelined SETs at 50
# clients; CPU per request from /proc/PID/stat ticks (issue 14, session 29, h170).
#
#   bash bench/aof-store-max-ab.sh PATH/EioSharp.Kv.dll ROUNDS
set -u
dll=$1; rounds=$2
declare -A PORT PID
for v in 512 4096; do
  p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  d=$(mktemp -d /tmp/aof-store-max-ab.XXXXXX)
  EIOSHARP_KV_AOF_TAIL_STORE_MAX=$v dotnet "$dll" --port "$p" --bind 127.0.0.1 --dir "$d/data" >"$d/out" 2>&1 &
  PID[$v]=$!; PORT[$v]=$p
done
for v in 512 4096; do for _ in $(seq 600); do [ "$(redis-cli -p "${PORT[$v]}" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done; done
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
bench() { redis-benchmark -p "$1" -n "$2" -r 100000 -c 50 -P "$3" -d "$4" -t set -q >/dev/null; }
for v in 512 4096; do bench "${PORT[$v]}" 200000 16 1024; bench "${PORT[$v]}" 100000 1 16; done
for r in $(seq "$rounds"); do
  for v in 512 4096; do
    a=$(ticks "${PID[$v]}"); bench "${PORT[$v]}" 400000 16 1024; b=$(ticks "${PID[$v]}")
    c=$(ticks "${PID[$v]}"); bench "${PORT[$v]}" 150000 1 16; e=$(ticks "${PID[$v]}")
    echo "round $r max=$v p16-1k $(echo "($b-$a)*10000/400000" | bc -l | cut -c1-5) us  c50-16B $(echo "($e-$c)*10000/150000" | bc -l | cut -c1-5) us load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
for v in 512 4096; do kill "${PID[$v]}"; wait "${PID[$v]}" 2>/dev/null; done
