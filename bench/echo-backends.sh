#!/usr/bin/env bash
# Echo server CPU per round trip and throughput on each backend vs a raw .NET Socket server (issue 15). Each server is its
# own process (bench/EioSharp.Benchmarks echo-server), the client another (echo-client: CONNECTIONS connections, each
# sending a 16-byte line and waiting for it ROUNDTRIPS times); the server's CPU = utime+stime from /proc/PID/stat over the
# measured client run (after a warm-up run). Loopback only, free ports.
# Usage: bash bench/echo-backends.sh [runs=3] [roundtrips=400] [connections=50] [servers="raw portable epoll uring"]
# Build first: dotnet build bench/EioSharp.Benchmarks -c Release
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
rt=${2:-400}
conns=${3:-50}
servers=${4:-raw portable epoll uring}
dll=bench/EioSharp.Benchmarks/bin/Release/net10.0/EioSharp.Benchmarks.dll
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
for r in $(seq 1 "$runs"); do
  for s in $servers; do
    fifo=$(mktemp -u); mkfifo "$fifo"
    portfile=$(mktemp)
    dotnet "$dll" echo-server "$s" <"$fifo" >"$portfile" 2>/dev/null & pid=$!
    exec 9>"$fifo" # keeps the server's stdin open; closing it stops the server
    for i in $(seq 100); do [ -s "$portfile" ] && break; sleep 0.1; done
    port=$(head -1 "$portfile")
    dotnet "$dll" echo-client "$port" "$conns" 100 >/dev/null # warm-up
    before=$(cpu $pid)
    out=$(dotnet "$dll" echo-client "$port" "$conns" "$rt")
    after=$(cpu $pid)
    exec 9>&-
    wait $pid 2>/dev/null
    rm -f "$fifo" "$portfile"
    awk -v n="$s" -v b="$before" -v a="$after" -v t="$tck" -v o="$out" -v total=$((conns * rt)) \
      'BEGIN { printf "run=%d %-9s server_cpu_us_per_rt=%6.2f  %s\n", '"$r"', n, (a-b)/t*1e6/total, o }'
  done
done
