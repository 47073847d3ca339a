#!/usr/bin/env bash
# May this machine's trace clock be the TSC (EIOSHARP_TRACE_CLOCK=tsc, issue 17, h122)? Two threads pinned to CPU 0 and
# CPU 1 hand a turn back and forth; each reads the TSC after it sees the other's turn end and compares with the other's
# reading. Every reading is a cross-CPU handover; "warps" are readings smaller than the other CPU's earlier one (time
# going backwards between domains). Run with an ordered read (lfence; rdtsc: the trace clock's routine) and a bare rdtsc.
# The smallest difference in each direction bounds the offset between the two CPUs' counters.
# Usage: bench/tsc-order-check.sh [SECONDS]   (needs gcc and 2 CPUs)
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-10}
BIN=$(mktemp -d)/tscpingpong
gcc -O2 -pthread -o "$BIN" tsc-order/tscpingpong.c
echo "clock source: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
echo "cpu flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(constant_tsc|nonstop_tsc|tsc_known_freq|tsc_reliable)$' | tr '\n' ' ')"
"$BIN" "$SECS" lfence
"$BIN" "$SECS" plain
rm -rf "$(dirname "$BIN")"
