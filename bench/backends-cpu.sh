#!/usr/bin/env bash
# CPU time per request of the KV server (portable vs epoll backend) and redis-server under redis-benchmark, loopback only.
# Usage: bash bench/backends-cpu.sh [runs=3]. Prints one line per (server, clients, run): µs CPU/request and requests/s.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
dll=apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
measure() { # name pid port clients
  local name=$1 pid=$2 port=$3 c=$4
  redis-benchmark -p "$port" -t set,get -n 20000 -c "$c" -q >/dev/null 2>&1 # warm-up
  local before after out
  before=$(cpu "$pid")
  out=$(redis-benchmark -p "$port" -t set,get -n 100000 -c "$c" -q 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | sed -E 's/^([A-Z]+): ([0-9.]+) requests.*/\1 \2/' | tr '\n' ' ')
  after=$(cpu "$pid")
  awk -v n="$name" -v c="$c" -v b="$before" -v a="$after" -v t="$tck" -v o="$out" \
    'BEGIN { printf "%-9s c=%-3s cpu/req=%6.2f us  set/get req/s: %s\n", n, c, (a-b)/t*1e6/200000, o }'
}
port=16400
for r in $(seq 1 "$runs"); do
  for s in portable epoll redis; do
    port=$((port+1)); dir=$(mktemp -d)
    if [ $s = redis ]; then
      redis-server --port $port --save '' --appendonly no --dir "$dir" >/dev/null 2>&1 & pid=$!
    else
      EIOSHARP_BACKEND=$s dotnet $dll --port $port --dir "$dir" --domains 1 --store-domain main >/dev/null 2>&1 & pid=$!
    fi
    for i in $(seq 50); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
    measure $s $pid $port 50
    measure $s $pid $port 1
    kill $pid; wait $pid 2>/dev/null; rm -rf "$dir"
  done
done
