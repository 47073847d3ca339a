#!/usr/bin/env bash
# Server CPU per request of several servers under the same redis-benchmark load, runs alternating between them.
#
#   bash bench/kv-alternate-cpu.sh <n> <test> <clients> <repeats> name='command' [name='command' ...]
#
# Each command starts one server; @PORT@ and @DIR@ in it are replaced by a free loopback port and a fresh directory, e.g.
#   bash bench/kv-alternate-cpu.sh 100000 get 50 5 \
#     "base=dotnet /tmp/s12-new/kv/EioSharp.Kv.dll --port @PORT@ --bind 127.0.0.1 --dir @DIR@" \
#     "new=dotnet apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll --port @PORT@ --bind 127.0.0.1 --dir @DIR@" \
#     "redis=redis-server --port @PORT@ --bind 127.0.0.1 --dir @DIR@ --save '' --appendonly no"
# Every server is started once and warmed (100,000 SET and GET, 50 clients: JIT tiering, keyspace filled), then each
# repeat runs `redis-benchmark -n <n> -r 100000 -d 16 -c <clients> -t <test>` against each server in turn and prints
# ops/s and the server's utime+stime+cutime+cstime (/proc/PID/stat) per request in microseconds, with the load average.
# Take the median per server yourself; CPU per request is steadier than ops/s on a shared machine.
set -u
n=$1; t=$2; c=$3; reps=$4; shift 4
WORK="$(mktemp -d /tmp/kv-alternate-cpu.XXXXXX)"
CLK_TCK=$(getconf CLK_TCK)
ulimit -n 20000 2>/dev/null || true
declare -A PORT PID
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
cleanup() { for p in "${PID[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
for spec in "$@"; do
  name=${spec%%=*}; cmd=${spec#*=}; port=$(free_port); d="$WORK/$name"; mkdir -p "$d"
  cmd=${cmd//@PORT@/$port}; cmd=${cmd//@DIR@/$d}
  bash -c "exec $cmd" >"$d/log" 2>&1 &
  PID[$name]=$!; PORT[$name]=$port
done
for name in "${!PORT[@]}"; do for _ in $(seq 100); do redis-cli -p "${PORT[$name]}" ping >/dev/null 2>&1 && break; sleep 0.2; done; done
for name in "${!PORT[@]}"; do redis-benchmark -p "${PORT[$name]}" -n 100000 -r 100000 -d 16 -c 50 -t set,get -q >/dev/null 2>&1; done
for r in $(seq "$reps"); do
  for spec in "$@"; do
    name=${spec%%=*}; pid=${PID[$name]}
    b=$(awk '{print $14+$15+$16+$17}' "/proc/$pid/stat")
    rps=$(redis-benchmark -p "${PORT[$name]}" -n "$n" -r 100000 -d 16 -c "$c" -t "$t" --csv 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
    a=$(awk '{print $14+$15+$16+$17}' "/proc/$pid/stat")
    echo "$name $t rep$r rps $rps cpu_us $(python3 -c "print(round(($a-$b)*1e6/$CLK_TCK/$n,2))") load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
