#!/usr/bin/env bash
# Instructions per request of pipelined SETs (issue 14: -P 16 SET, 16 B and 1 KB values) in the server process, counted by
# valgrind's callgrind (every thread of the server; redis-benchmark runs outside valgrind): a figure the machine's load
# does not move. Same method as bench/kv-pingpong-instructions.sh (its header explains the runtime settings).
#
#   bench/kv-set-instructions.sh TARGET ...   # TARGET: a directory or path of EioSharp.Kv.dll, or "redis"
#
# For each target the server starts under callgrind with the AOF on (appendfsync everysec, automatic rewrites off: both
# servers), answers WARMUP SETs, then its counters are zeroed (callgrind_control -z), REQUESTS SETs run
# (`redis-benchmark -c CLIENTS -P PIPELINE -d SIZE -r KEYSPACE -t set`), and the counters are dumped: instructions /
# REQUESTS is the figure (WINDOWS consecutive windows, the lowest taken). An idle stretch as long as the last window is
# then counted and subtracted ("net": timers, the cron). Repeated REPEATS times, targets alternating; medians printed.
# TOP=N prints the N functions of highest self cost (per request) of each target's last run (managed ones named
# through the runtime's perf map). KEYSPACE is small enough by default that the warm-up has created every key: the
# windows count overwrites of existing keys (with -r 100000 both servers grow and rehash their tables inside the
# windows, a one-off cost of ~15% that lands in whichever window it falls).
# Environment: REQUESTS (32000), WINDOWS (2), WARMUP (64000), REPEATS (1), CLIENTS (50), PIPELINE (16), SIZE (16),
# KEYSPACE (10000),
# KV_ARGS (extra server arguments, e.g. "--backend epoll"), TOP (0), AOF (yes; "no": both servers run with
# --appendonly no, the request side alone: session 40, h220, §217), OP (set; "get": the warm-up's SETs fill the keyspace,
# WARMUP GETs follow them, and the windows count GETs of those keys: session 41, h222, §219).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${REQUESTS:-32000}"; WARMUP="${WARMUP:-64000}"; REPEATS="${REPEATS:-1}"; TOP="${TOP:-0}"; WINDOWS="${WINDOWS:-2}"
CLIENTS="${CLIENTS:-50}"; PIPELINE="${PIPELINE:-16}"; SIZE="${SIZE:-16}"; KEYSPACE="${KEYSPACE:-10000}"
KV_ARGS="${KV_ARGS:-}"; AOF="${AOF:-yes}"; OP="${OP:-set}"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ $# -gt 0 ] || { sed -n '2,21p' "$0"; exit 2; }
# shellcheck source=bench/lib/callgrind-windows.sh
. "$ROOT/bench/lib/callgrind-windows.sh"
cgw_init kv-set-instr
CGW_REDIS_ARGS=(--save '')

bench_set() { # port requests [command: set]
  redis-benchmark -h 127.0.0.1 -p "$1" -c "$CLIENTS" -P "$PIPELINE" -d "$SIZE" -r "$KEYSPACE" -n "$2" -t "${3:-set}" -q >/dev/null 2>&1
}

measure() { # target run -> prints "target run ir_rounds ir_idle"
  local target=$1 run=$2
  if [ "$AOF" = no ]; then
    cgw_start "$target" "$run" --appendonly no
  else
    cgw_start "$target" "$run" --appendonly yes --appendfsync everysec --auto-aof-rewrite-percentage 0
  fi
  cgw_wait_ready "$PORT" || return 1
  bench_set "$PORT" "$WARMUP"
  [ "$OP" = set ] || bench_set "$PORT" "$WARMUP" "$OP"
  cgw_windows "$target" "$run" "$PORT" bench_set "$PORT" "$ROUNDS" "$OP"
}

cgw_run_all "$ROUNDS" request "$@"
