#!/usr/bin/env bash
# CPU time per request of EioSharp.Kv with maxmemory-clients 0 (off) and 1gb (on, never reached), alternating runs
# (issue 13, branch h51). Build first: dotnet build apps/EioSharp.Kv -c Release. Prints one line per run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
P=$(python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])")
nice dotnet "$ROOT/apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll" --port "$P" --appendonly no > /dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
sleep 4
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$PID/stat; }
redis-benchmark -p "$P" -t set,get -n 600000 -P 16 -c 50 -q > /dev/null 2>&1 # warm-up (JIT tiers)
for i in 1 2 3 4 5; do for v in 0 1gb; do
  redis-cli -p "$P" config set maxmemory-clients "$v" > /dev/null
  a=$(cpu); redis-benchmark -p "$P" -t set,get -n 300000 -P 16 -c 50 -q > /dev/null 2>&1; b=$(cpu)
  echo "maxmemory-clients=$v cpu_us_per_request=$(python3 -c "print(round(($b-$a)*1e6/$TCK/600000,3))")"
done; done
redis-cli -p "$P" shutdown nosave > /dev/null || true
