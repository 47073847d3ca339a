#!/usr/bin/env bash
# CPU time per request of the KV server on each backend (--backend portable|epoll|uring) and redis-server under
# redis-benchmark, loopback only, free ports. Usage: bash bench/backends-cpu.sh [runs=3] [requests=30000] [clients="50 1"].
# Prints one line per (server, clients, run): µs CPU/request and requests/s.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
requests=${2:-30000}
clientsets=${3:-50 1}
dll=apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
measure() { # name pid port clients
  local name=$1 pid=$2 port=$3 c=$4
  redis-benchmark -p "$port" -t set,get -n 5000 -c "$c" -q >/dev/null 2>&1 # warm-up
  local before after out
  before=$(cpu "$pid")
  out=$(redis-benchmark -p "$port" -t set,get -n "$requests" -c "$c" -q 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | sed -E 's/^([A-Z]+): ([0-9.]+) requests.*/\1 \2/' | tr '\n' ' ')
  after=$(cpu "$pid")
  awk -v n="$name" -v c="$c" -v b="$before" -v a="$after" -v t="$tck" -v o="$out" -v r="$requests" \
    'BEGIN { printf "%-9s c=%-3s cpu/req=%6.2f us  set/get req/s: %s\n", n, c, (a-b)/t*1e6/(2*r), o }'
}
freeport() { python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])"; }
for r in $(seq 1 "$runs"); do
  for s in portable epoll uring redis; do
    port=$(freeport); dir=$(mktemp -d)
    if [ $s = redis ]; then
      redis-server --port $port --save '' --appendonly no --dir "$dir" >/dev/null 2>&1 & pid=$!
    else
      dotnet $dll --backend $s --port $port --dir "$dir" --domains 1 --store-domain main >/dev/null 2>&1 & pid=$!
    fi
    for i in $(seq 50); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
    for c in $clientsets; do measure $s $pid $port "$c"; done
    kill $pid; wait $pid 2>/dev/null; rm -rf "$dir"
  done
done
