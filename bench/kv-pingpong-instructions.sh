#!/usr/bin/env bash
# Instructions per BLPOP/LPUSH ping-pong round trip (issue 12) in the server process, counted by valgrind's callgrind
# (every thread of the server; the load generator runs outside valgrind): a figure the machine's load does not move.
#
#   bench/kv-pingpong-instructions.sh TARGET ...   # TARGET: a directory or path of EioSharp.Kv.dll, or "redis"
#
# For each target the server starts under callgrind (counting from the start), answers a warm-up of WARMUP round trips,
# then its counters are zeroed (callgrind_control -z), ROUNDS round trips run (bench/EioSharp.Kv.LoadGen pingpong), and
# the counters are dumped (callgrind_control -d): instructions / ROUNDS is the figure. The same is then done for an idle
# stretch as long as the measured one (timers: the cron, the block-timeout fiber, the runtime's own threads), and that
# is subtracted ("net"). The whole is repeated REPEATS times per target, alternating targets; medians are printed.
# The server's code is tiered as in production but without PGO instrumentation (DOTNET_TieredPGO=0) and with call counting
# from the first call (DOTNET_TC_CallCountingDelayMs=0): the warm-up's thousands of calls move the path's methods to
# tier 1 (FullOpts) before the counters are zeroed. (DOTNET_TieredCompilation=0, as bench/trace-overhead-instructions.sh
# uses, compiles the whole server start-up FullOpts under valgrind: over 10 minutes on the loaded VM.) As there:
# DOTNET_JitEnableOptionalRelocs=0 (FullOpts compiles under valgrind otherwise fall back to MinOpts), no background GC
# (DOTNET_gcConcurrent=0), no W^X double mapping (DOTNET_EnableWriteXorExecute=0).
# With TOP=N (default 0) the N functions with the highest self cost of the last measured dump of each target are printed,
# managed ones named through the runtime's perf map (DOTNET_PerfMapEnabled=1).
#
# Kv servers run on the epoll backend here (BACKEND, default epoll), not on auto's io_uring: valgrind 3.19 does not
# mark io_uring_enter as a blocking syscall, so a thread waiting in it keeps valgrind's one-thread-at-a-time lock and
# every other thread of the process (the runtime's tiered compiler, finalizer, timers, sockets, signal handler) waits
# for it (anon_pipe_read) until the ring's wait ends. Start-up then crawled or never finished (sessions 14 and 16:
# "idle in io_cqring_wait, no log line"; session 17 reproduced the lock with a 20-line C program: a second thread never
# runs while the first waits in io_uring_enter under valgrind, and SIGTERM is not delivered either). epoll_wait
# releases the lock. Use the same BACKEND for every target of a comparison; BACKEND=uring is at your own risk.
# Start-up is checked: the server must answer PING within READY_SECS (1800) and still be running, else the script
# stops with the server log's tail.
# Environment: ROUNDS (500 per window), WINDOWS (3), WARMUP (1500), REPEATS (3), LOADGEN_DLL, BACKEND (epoll), KV_ARGS
# (extra server arguments), TOP (0), READY_SECS (1800).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-500}"; WARMUP="${WARMUP:-1500}"; REPEATS="${REPEATS:-3}"; TOP="${TOP:-0}"; WINDOWS="${WINDOWS:-3}"
LOADGEN_DLL="${LOADGEN_DLL:-$ROOT/bench/EioSharp.Kv.LoadGen/bin/Release/net10.0/EioSharp.Kv.LoadGen.dll}"
KV_ARGS="${KV_ARGS:-}"; BACKEND="${BACKEND:-epoll}"; READY_SECS="${READY_SECS:-1800}"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ $# -gt 0 ] || { sed -n '2,/^set -euo/p' "$0" | grep '^#'; exit 2; }
# shellcheck source=bench/lib/callgrind-windows.sh
. "$ROOT/bench/lib/callgrind-windows.sh"
cgw_init kv-pp-instr
CGW_REDIS_ARGS=(--save ''); KV_ARGS="--backend $BACKEND $KV_ARGS"

measure() { # target run -> prints "target run ir_rounds ir_idle"
  local target=$1 run=$2
  cgw_start "$target" "$run" --appendonly yes
  cgw_wait_ready "$PORT" "$READY_SECS" || return 1
  dotnet "$LOADGEN_DLL" pingpong --port "$PORT" --rounds "$WARMUP" --timeout 600 >/dev/null
  cgw_windows "$target" "$run" "$PORT" dotnet "$LOADGEN_DLL" pingpong --port "$PORT" --rounds "$ROUNDS" --timeout 900
}

cgw_run_all "$ROUNDS" "round trip" "$@"
