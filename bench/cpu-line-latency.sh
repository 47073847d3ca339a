#!/usr/bin/env bash
# The price of a cache line moved between CPUs A and B, and of a system call, on this machine now (issue 20, h206).
# On this VM the host places the two vCPUs differently over time: a line's round trip read ~115 ns at some minutes and
# ~450-500 ns at others (session 37), and the cross-domain round trip follows it (~2.1 µs vs ~6-8 µs pinned apart), so
# note this with every reading of DomainsPingPongBenchmarks. Runs under `chrt -f 10` (bounded by timeout) so that the
# two threads are alone on their CPUs; without root, drop the chrt.
# Usage: bash bench/cpu-line-latency.sh [ROUNDS=20000] [CPU_A=0] [CPU_B=1]
set -euo pipefail
ROUNDS=${1:-20000}; A=${2:-0}; B=${3:-1}
OUT=${TMPDIR:-/tmp}/cpu-line-latency.$$
mkdir -p "$OUT"
DIR=$(cd "$(dirname "$0")" && pwd)/cpu-line-latency
gcc -O2 -pthread -o "$OUT/line" "$DIR/line.c"
gcc -O2 -o "$OUT/sys" "$DIR/sys.c"
PREFIX="timeout 30 chrt -f 10"
$PREFIX true 2>/dev/null || PREFIX="timeout 30"
$PREFIX "$OUT/line" "$ROUNDS" "$A" "$B" 0   # a plain load spin
$PREFIX "$OUT/line" "$ROUNDS" "$A" "$B" 1   # a pause in the spin
$PREFIX "$OUT/sys" "$A"                     # clock_gettime, sched_yield, getppid, pause
rm -rf "$OUT"
