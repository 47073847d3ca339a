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
. bench/lib/echo-server-cpu.sh
for r in $(seq 1 "$runs"); do
  for s in $servers; do
    server_cpu_run "$s" "echo-client $conns 100" "echo-client $conns $rt"
    awk -v n="$s" -v c="$SERVER_CPU_SECONDS" -v o="$CLIENT_OUTPUT" -v total="$((conns * rt))" \
      'BEGIN { printf "run=%d %-9s server_cpu_us_per_rt=%6.2f  %s\n", '"$r"', n, c*1e6/total, o }'
  done
done
