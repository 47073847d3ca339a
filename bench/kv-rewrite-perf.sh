#!/usr/bin/env bash
# (h136, issue 14) bash bench/kv-rewrite-perf.sh EioSharp.Kv.dll OUT.perf.data; then perf report -i OUT.perf.data --no-children --sort comm,sym
# One BGREWRITEAOF of ~95k 1 KB keys on an otherwise idle server, under perf record (as bench/kv-rewrite-cpu.sh fills it).
# REFILL=N (h150): N more SETs of the same keys between the two warm rewrites and the measured one, as the 1 KB -P16 row
# overwrites its keys between automatic rewrites (without it the measured rewrite writes every value on a kept
# incompressibility proof, rationale \u00a7134, and never runs LZF's bound).
dll=$1; out=$2
d=$(mktemp -d /tmp/h136-rw.XXXXXX); port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$d" --auto-aof-rewrite-percentage 0 >"$d/log" 2>&1 & pid=$!
for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
redis-benchmark -h 127.0.0.1 -p "$port" -n 300000 -r 100000 -c 50 -P 16 -d 1024 -t set -q >/dev/null 2>&1
for i in 1 2; do redis-cli -p $port bgrewriteaof >/dev/null; sleep 0.3; while redis-cli -p $port info persistence | grep -q "aof_rewrite_in_progress:1"; do sleep 0.1; done; done
[ "${REFILL:-0}" -gt 0 ] && redis-benchmark -h 127.0.0.1 -p "$port" -n "$REFILL" -r 100000 -c 50 -P 16 -d 1024 -t set -q >/dev/null 2>&1
sleep 1
t0=$(awk '{print $14+$15+$16+$17}' "/proc/$pid/stat")
perf record -e cpu-clock -g -p $pid -o "$out" 2>/dev/null >/dev/null & pp=$!
sleep 0.5
redis-cli -p $port bgrewriteaof >/dev/null; sleep 0.3
while redis-cli -p $port info persistence | grep -q "aof_rewrite_in_progress:1"; do sleep 0.1; done
kill -INT $pp; wait $pp
t1=$(awk '{print $14+$15+$16+$17}' "/proc/$pid/stat")
echo "rewrite CPU ticks $((t1-t0)) keys $(redis-cli -p $port dbsize) $(redis-cli -p $port info persistence | grep aof_base_size) load $(cut -d' ' -f1 /proc/loadavg)"
kill $pid; wait $pid 2>/dev/null; rm -rf $d
