#!/usr/bin/env bash
# (h140, issue 14) CPU of an AOF rewrite of a keyspace that did not change since the previous rewrite, per EioSharp.Kv build,
# runs alternating: each run fills a fresh server (300,000 SETs -r 100000 -d 1024, redis-benchmark's incompressible values,
# auto rewrite off), runs one BGREWRITEAOF (the warm-up: it tiers the writer up, and a build with h140 records a proof of
# incompressibility per key), then times a second BGREWRITEAOF with no write in between: process utime+stime (clock
# ticks of 10 ms) until aof_rewrite_in_progress is 0, and MEMORY MALLOC-STATS' proof counts.
#
#   bash bench/kv-rewrite-unchanged.sh BEFORE.dll AFTER.dll      # REPEATS (3)
REPEATS=${REPEATS:-3}
rewrite() { # port
  redis-cli -p "$1" bgrewriteaof >/dev/null; sleep 0.2
  while redis-cli -p "$1" info persistence | grep -q "aof_rewrite_in_progress:1"; do sleep 0.1; done
}
for rep in $(seq 1 "$REPEATS"); do for dll in "$@"; do
  d=$(mktemp -d /tmp/kv-rewrite-unchanged.XXXXXX); port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$d" --auto-aof-rewrite-percentage 0 >"$d/log" 2>&1 & pid=$!
  for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
  redis-benchmark -h 127.0.0.1 -p "$port" -n 300000 -r 100000 -c 50 -P 16 -d 1024 -t set -q >/dev/null 2>&1
  rewrite "$port"; sleep 1
  t0=$(awk '{print $14+$15+$16+$17}' "/proc/$pid/stat")
  rewrite "$port"
  t1=$(awk '{print $14+$15+$16+$17}' "/proc/$pid/stat")
  proofs=$(redis-cli -p "$port" memory malloc-stats | grep -E "^Snapshot strings" || echo "(no proofs in this build)")
  echo "run $rep $dll: second rewrite CPU ticks $((t1-t0)) keys $(redis-cli -p "$port" dbsize) load $(cut -d' ' -f1 /proc/loadavg); $proofs"
  kill $pid; wait $pid 2>/dev/null; rm -rf "$d"
done; done
