#!/usr/bin/env bash
# Accept-heavy echo (issue 15, multishot accept): the echo server of bench/echo-backends.sh on each backend, and the io_uring
# one with multishot accept turned off (uring-oneshot), under a client that opens CONNECTIONS short connections from WORKERS
# threads (connect, one 16-byte round trip, close). Server CPU = utime+stime from /proc/PID/stat over the measured run
# (after a warm-up run), per connection. Loopback only, free ports.
# Usage: bash bench/accept-backends.sh [runs=3] [connections=5000] [workers=8] [servers="raw epoll uring-oneshot uring"]
# Build first: dotnet build bench/EioSharp.Benchmarks -c Release
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
n=${2:-5000}
workers=${3:-8}
servers=${4:-raw epoll uring-oneshot uring}
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
    dotnet "$dll" churn-client "$port" "$workers" 500 >/dev/null # warm-up
    before=$(cpu $pid)
    out=$(dotnet "$dll" churn-client "$port" "$workers" "$n")
    after=$(cpu $pid)
    exec 9>&-
    wait $pid 2>/dev/null
    rm -f "$fifo" "$portfile"
    awk -v n="$s" -v b="$before" -v a="$after" -v t="$tck" -v o="$out" -v total="$n" \
      'BEGIN { printf "run=%d %-13s server_cpu_us_per_conn=%7.2f  %s\n", '"$r"', n, (a-b)/t*1e6/total, o }'
  done
done
