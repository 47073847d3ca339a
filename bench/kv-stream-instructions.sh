#!/usr/bin/env bash
# Instructions per stream message (issue 12's XADD + XREADGROUP + XACK row) in the server process, counted by valgrind's
# callgrind (every thread of the server; the clients run outside valgrind): a figure the machine's load does not move
# (the seq workload's; the loadgen workload's batches still depend on timing, so it also prints its requests per message).
#
#   bench/kv-stream-instructions.sh TARGET ...   # TARGET: a directory or path of EioSharp.Kv.dll, or "redis"
#
# Workloads (WORKLOAD=seq|loadgen):
#   seq      bench/lib/stream-seq-client.py: one client, XADD + XREADGROUP COUNT 10 + XACK per message, no pipelining:
#            exactly 3 requests per message on any server, nothing blocks (as kv-server-instructions.sh's stream-seq)
#   loadgen  bench/EioSharp.Kv.LoadGen stream: 2 producers XADD, 2 consumers XREADGROUP COUNT 10 BLOCK 1000 + XACK, as
#            bench/kv-features.sh's stream row (consumers block when the stream is drained: the blocked-reader path)
# Method as bench/kv-pingpong-instructions.sh: the server starts under callgrind, answers a warm-up of WARMUP messages,
# then for each of WINDOWS windows its statistics are reset (CONFIG RESETSTAT), its counters zeroed (callgrind_control
# -z), MESSAGES messages run and the counters dumped: the lowest window / MESSAGES is the figure; an idle stretch as
# long as the last window is measured and subtracted ("net"). The server's code is tiered as in production, without PGO
# instrumentation and with call counting from the first call (the env below). Both servers run with --appendonly yes
# --appendfsync everysec --save "" (kv-features.sh's equal durability) unless SERVER_ARGS says otherwise.
# With TOP=N the N functions with the highest self cost of the last run's lowest window are printed (managed ones named
# through the runtime's perf map). Requests per message of the last window (INFO commandstats) are printed per run.
# Environment: WORKLOAD (seq), MESSAGES (1000 per window), WINDOWS (3), WARMUP (3000), REPEATS (2), LOADGEN_DLL,
# SERVER_ARGS, KV_ARGS (extra EioSharp.Kv arguments; use "--backend epoll": under valgrind 3.19 the io_uring backend
# hung before its first reply in session 17 too, as kv-server-instructions.sh says), TOP (0), KEEP (a directory: the last
# run's dumps and perf maps are copied there, for callgrind_annotate --inclusive=yes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKLOAD="${WORKLOAD:-seq}"; MESSAGES="${MESSAGES:-1000}"; WARMUP="${WARMUP:-3000}"; REPEATS="${REPEATS:-2}"
TOP="${TOP:-0}"; WINDOWS="${WINDOWS:-3}"; KEEP="${KEEP:-}"
LOADGEN_DLL="${LOADGEN_DLL:-$ROOT/bench/EioSharp.Kv.LoadGen/bin/Release/net10.0/EioSharp.Kv.LoadGen.dll}"
SERVER_ARGS="${SERVER_ARGS:---appendonly yes --appendfsync everysec --save ''}"
KV_ARGS="${KV_ARGS:-}"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ $# -gt 0 ] || { sed -n '2,23p' "$0"; exit 2; }
# shellcheck source=bench/lib/callgrind-windows.sh
. "$ROOT/bench/lib/callgrind-windows.sh"
cgw_init kv-stream-instr

workload() { # port messages
  case "$WORKLOAD" in
    seq) python3 "$ROOT/bench/lib/stream-seq-client.py" "$1" "$2" >/dev/null ;;
    loadgen) dotnet "$LOADGEN_DLL" stream --port "$1" --producers 2 --consumers 2 --count 10 --messages "$2" --timeout 900 >/dev/null ;;
    *) echo "WORKLOAD is seq or loadgen" >&2; exit 2 ;;
  esac
}

requests() { # port -> "xadd=N xreadgroup=N xack=N" (calls since the last CONFIG RESETSTAT)
  redis-cli -p "$1" INFO commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_(xadd|xreadgroup|xack):/ { sub("cmdstat_", "", $1); printf "%s=%s ", $1, $3 }'
}

cgw_before_window() { redis-cli -p "$1" CONFIG RESETSTAT >/dev/null; }
cgw_after_window() { LAST_REQS=$(requests "$1"); }
cgw_window_note() { echo "  ($1 run $2, last window: ${LAST_REQS:-}; load $(cut -d' ' -f1-3 /proc/loadavg))" >&2; }

measure() { # target run -> prints "target run ir_idle secs ir_window..."
  local target=$1 run=$2
  local -a args
  eval "args=($SERVER_ARGS)"
  cgw_start "$target" "$run" "${args[@]}"
  cgw_wait_ready "$PORT" || return 1
  workload "$PORT" "$WARMUP"
  cgw_windows "$target" "$run" "$PORT" workload "$PORT" "$MESSAGES"
}

echo "workload $WORKLOAD, $MESSAGES messages per window; load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cgw_run_all "$MESSAGES" message "$@"
