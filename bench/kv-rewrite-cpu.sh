#!/usr/bin/env bash
# CPU (process utime+stime+cutime+cstime, clock ticks of 10 ms) of one BGREWRITEAOF of ~95,000 1 KB string keys, per EioSharp.Kv
# build, runs alternating: each run fills a fresh server (300,000 SETs -r 100000 -d 1024, auto rewrite off), then times one
# BGREWRITEAOF until aof_rewrite_in_progress is 0 on the otherwise idle server.
#
#   bench/kv-rewrite-cpu.sh BEFORE.dll AFTER.dll      # REPEATS (3)
# WARM_REWRITES=N (h150): N unmeasured BGREWRITEAOFs first (the rewrite's code tiered up, as in a server that has
# rewritten before), then REFILL more SETs of the same keys (their values changed since: no incompressibility proofs
# kept, as between the 1 KB -P16 row's automatic rewrites), then the measured one. Default 0 / 0: the first rewrite.
REPEATS=${REPEATS:-3}
for rep in $(seq 1 $REPEATS); do for dll in "$@"; do
d=$(mktemp -d /tmp/kv-rewrite-cpu.XXXXXX); port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$d" --auto-aof-rewrite-percentage 0 >"$d/log" 2>&1 & pid=$!
for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
redis-benchmark -h 127.0.0.1 -p "$port" -n 300000 -r 100000 -c 50 -P 16 -d 1024 -t set -q >/dev/null 2>&1
for _ in $(seq 1 "${WARM_REWRITES:-0}"); do
  redis-cli -p $port bgrewriteaof >/dev/null; sleep 0.3
  while redis-cli -p $port info persistence | grep -q "aof_rewrite_in_progress:1"; do sleep 0.1; done
done
[ "${REFILL:-0}" -gt 0 ] && redis-benchmark -h 127.0.0.1 -p "$port" -n "$REFILL" -r 100000 -c 50 -P 16 -d 1024 -t set -q >/dev/null 2>&1
sleep 2
t0=$(awk '{print $14+$15+$16+$17}' "/proc/$pid/stat")
redis-cli -p $port bgrewriteaof >/dev/null
sleep 0.2
while redis-cli -p $port info persistence | grep -q "aof_rewrite_in_progress:1"; do sleep 0.1; done
t1=$(awk '{print $14+$15+$16+$17}' "/proc/$pid/stat")
echo "run $rep $dll: rewrite CPU ticks $((t1-t0)) keys $(redis-cli -p $port dbsize) base $(redis-cli -p $port info persistence | grep aof_base_size)"
kill $pid; wait $pid 2>/dev/null; rm -rf $d
done; done
