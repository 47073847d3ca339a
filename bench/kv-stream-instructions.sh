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
WORK="$(mktemp -d /tmp/kv-stream-instr.XXXXXX)"; SPID=""
cleanup() { [ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
total_ir() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

wait_dump() { # pid n -> path of dump n once whole
  local f="$WORK/callgrind.out.$1.$2"
  for _ in $(seq 1 600); do
    if [ -f "$f" ] && grep -q '^totals:\|^summary:' "$f"; then echo "$f"; return 0; fi
    sleep 0.2
  done
  echo "no dump $f" >&2; return 1
}

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

measure() { # target run -> prints "target run ir_idle secs ir_window..."
  local target=$1 run=$2 port dir dll
  port=$(free_port); dir="$WORK/data.$run"; rm -rf "$dir"; mkdir -p "$dir"
  if [ "$target" = redis ]; then
    # shellcheck disable=SC2086
    (cd "$WORK" && eval exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" --dump-instr=yes \
      redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" "$SERVER_ARGS" >"$WORK/server.log" 2>&1) &
  else
    dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
    # shellcheck disable=SC2086
    (cd "$WORK" && DOTNET_TieredPGO=0 DOTNET_TC_CallCountingDelayMs=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 \
      DOTNET_JitEnableOptionalRelocs=0 DOTNET_PerfMapEnabled=1 DOTNET_PerfMapIgnoreSignal=1 \
      eval exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" --dump-instr=yes \
      dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$dir/data" "$SERVER_ARGS" $KV_ARGS >"$WORK/server.log" 2>&1) &
  fi
  SPID=$!
  for _ in $(seq 1 2400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.5; done
  workload "$port" "$WARMUP"
  local t0 t1 secs f w windows="" reqs=""
  for w in $(seq 1 "$WINDOWS"); do
    redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
    callgrind_control -z "$SPID" >/dev/null
    t0=$(date +%s.%N)
    workload "$port" "$MESSAGES"
    t1=$(date +%s.%N)
    callgrind_control -d "$SPID" >/dev/null
    f=$(wait_dump "$SPID" "$w")
    windows="$windows $(total_ir "$f")"
    reqs=$(requests "$port")
  done
  secs=$(python3 -c "print($t1 - $t0)")
  callgrind_control -z "$SPID" >/dev/null
  sleep "$secs"
  callgrind_control -d "$SPID" >/dev/null
  local idle
  idle=$(total_ir "$(wait_dump "$SPID" $((WINDOWS + 1)))")
  echo "$target $run $idle $secs$windows"
  echo "  ($target run $run, last window: $reqs; load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  local best=1 bestv="" i=0
  for v in $windows; do i=$((i + 1)); if [ -z "$bestv" ] || [ "$v" -lt "$bestv" ]; then bestv=$v; best=$i; fi; done
  cp "$WORK/callgrind.out.$SPID.$best" "$WORK/last.$run.out"
  [ -f "/tmp/perf-$SPID.map" ] && cp "/tmp/perf-$SPID.map" "$WORK/last.$run.map"
  if [ -n "$KEEP" ]; then
    mkdir -p "$KEEP"; cp "$WORK/last.$run.out" "$KEEP/run$run.out"
    [ -f "$WORK/last.$run.map" ] && cp "$WORK/last.$run.map" "$KEEP/run$run.map"
  fi
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  rm -f "/tmp/perf-$SPID.map" "/tmp/perfinfo-$SPID.map"
  SPID=""
}

: >"$WORK/runs.txt"
run=0
echo "workload $WORKLOAD, $MESSAGES messages per window; load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for rep in $(seq 1 "$REPEATS"); do
  for t in "$@"; do
    run=$((run + 1))
    measure "$t" "$run" | tee -a "$WORK/runs.txt" >&2
    if [ "$TOP" -gt 0 ] && [ "$rep" = "$REPEATS" ]; then
      echo "== top $TOP self cost, $t (last run; instructions per message)"
      python3 "$ROOT/bench/lib/callgrind-self.py" "$WORK/last.$run.out" "$WORK/last.$run.map" "$MESSAGES" "$TOP" || true
    fi
  done
done
python3 "$ROOT/bench/lib/callgrind-windows-summary.py" "$WORK/runs.txt" "$MESSAGES" "message"
