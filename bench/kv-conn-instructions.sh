#!/usr/bin/env bash
# Instructions per short connection (session 37, h209): one client that opens a new connection for every request
# (redis-benchmark -k 0 -c 1 -t ping_inline: connect, PING, close) against the server under callgrind (every thread of the
# server; the client runs outside valgrind), counted as bench/kv-p1-instructions.sh counts a request: warm-up, then WINDOWS
# windows of ROUNDS connections between callgrind_control -z and -d (the lowest window is taken), then an idle stretch as
# long as a window (subtracted as "net"). REPEATS runs per target, alternating targets; medians are printed.
#
#   bench/kv-conn-instructions.sh TARGET ...   # TARGET: a directory or path of EioSharp.Kv.dll, or "redis"
#
# Environment: ROUNDS (connections per window, 200), WINDOWS (3), WARMUP (400 connections, so that the code run once per
# connection is at tier 1: the runtime tiers a method up after 30 calls), REPEATS (3), KV_ARGS, KV_ENV, TOP (as in
# bench/kv-p1-instructions.sh; PGO=1 leaves dynamic PGO on).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-200}"; WARMUP="${WARMUP:-400}"; REPEATS="${REPEATS:-3}"; TOP="${TOP:-0}"; WINDOWS="${WINDOWS:-3}"
KV_ARGS="${KV_ARGS:-}"
if [ -n "${PGO:-}" ]; then PGO_ENV="DOTNET_TieredPGO=1"; else PGO_ENV="DOTNET_TieredPGO=0"; fi
load() { redis-benchmark -p "$1" -k 0 -c 1 -n "$2" -t ping_inline -q >/dev/null 2>&1; }
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ $# -gt 0 ] || { sed -n '2,12p' "$0"; exit 2; }
# shellcheck source=bench/lib/callgrind-windows.sh
. "$ROOT/bench/lib/callgrind-windows.sh"
cgw_init kv-conn-instr
CGW_REDIS_ARGS=(--save ''); KV_ENV="$PGO_ENV ${KV_ENV:-}"

measure() { # target run -> prints "target run ir_idle secs ir_window..."
  local target=$1 run=$2
  cgw_start "$target" "$run" --appendonly yes
  cgw_wait_ready "$PORT" || return 1
  load "$PORT" "$WARMUP"
  sleep 3; cgw_wait_jit_idle # tier-1 compiles queued by the warm-up
  cgw_windows "$target" "$run" "$PORT" load "$PORT" "$ROUNDS"
}

cgw_run_all "$ROUNDS" connection "$@"
