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
. bench/lib/echo-server-cpu.sh
for r in $(seq 1 "$runs"); do
  for s in $servers; do
    server_cpu_run "$s" "churn-client $workers 500" "churn-client $workers $n"
    awk -v n="$s" -v c="$SERVER_CPU_SECONDS" -v o="$CLIENT_OUTPUT" -v total="$n" \
      'BEGIN { printf "run=%d %-13s server_cpu_us_per_conn=%7.2f  %s\n", '"$r"', n, c*1e6/total, o }'
  done
done
