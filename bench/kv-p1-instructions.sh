#!/usr/bin/env bash
# Instructions per unpipelined request (issue 14, session 17): one client's SET or GET loop (redis-benchmark -c CLIENTS
# -P 1 -r 100000 -d 16 -t TEST) against the server under callgrind (every thread of the server; the client runs outside
# valgrind), counted as bench/kv-pingpong-instructions.sh counts a round trip: warm-up, then WINDOWS windows of N
# requests between callgrind_control -z and -d (the lowest window is taken), then an idle stretch as long as a window
# (subtracted as "net"). REPEATS runs per target, alternating targets; medians are printed.
#
#   bench/kv-p1-instructions.sh TARGET ...   # TARGET: a directory or path of EioSharp.Kv.dll, or "redis"
#
# Environment: TEST (set; or get), CLIENTS (1), ROUNDS (requests per window, 2000), WINDOWS (3), WARMUP (20000),
# CONN_WARMUP (40: short load runs after the warm-up, so that the code run once per connection, which each window's
# redis-benchmark opens anew, is at tier 1 too; with fewer, the JIT compiling it showed up in the windows, session 26),
# REPEATS (3), KV_ARGS (extra server arguments), TOP (0: with N, the N highest self costs of the last run per target),
# KV_ENV (extra environment for the Kv server, e.g. "DOTNET_TieredPGO=0"; the default already sets TieredPGO=0 as the
# ping-pong script does; PGO=1 leaves dynamic PGO on).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-2000}"; WARMUP="${WARMUP:-20000}"; REPEATS="${REPEATS:-3}"; TOP="${TOP:-0}"; WINDOWS="${WINDOWS:-3}"
TEST="${TEST:-set}"; CLIENTS="${CLIENTS:-1}"; CONN_WARMUP="${CONN_WARMUP:-40}"
KV_ARGS="${KV_ARGS:-}"
if [ -n "${PGO:-}" ]; then PGO_ENV="DOTNET_TieredPGO=1"; else PGO_ENV="DOTNET_TieredPGO=0"; fi
load() { redis-benchmark -p "$1" -c "$CLIENTS" -n "$2" -P 1 -r 100000 -d 16 -t "$TEST" -q >/dev/null 2>&1; }
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ $# -gt 0 ] || { sed -n '2,16p' "$0"; exit 2; }
# shellcheck source=bench/lib/callgrind-windows.sh
. "$ROOT/bench/lib/callgrind-windows.sh"
cgw_init kv-p1-instr
CGW_REDIS_ARGS=(--save ''); KV_ENV="$PGO_ENV ${KV_ENV:-}"

measure() { # target run -> prints "target run ir_rounds ir_idle"
  local target=$1 run=$2
  cgw_start "$target" "$run" --appendonly yes
  cgw_wait_ready "$PORT" || return 1
  load "$PORT" "$WARMUP"
  for _ in $(seq 1 "$CONN_WARMUP"); do load "$PORT" 20; done
  sleep 3; cgw_wait_jit_idle # tier-1 compiles queued by the warm-up
  cgw_windows "$target" "$run" "$PORT" load "$PORT" "$ROUNDS"
}

cgw_run_all "$ROUNDS" request "$@"
