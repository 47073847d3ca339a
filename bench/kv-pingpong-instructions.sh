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
WORK="$(mktemp -d /tmp/kv-pp-instr.XXXXXX)"; SPID=""
cleanup() { [ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
total_ir() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

# Waits until callgrind has written dump number $2 of process $1 (callgrind_control -d returns before the file is whole).
wait_dump() {
  local f="$WORK/callgrind.out.$1.$2"
  for _ in $(seq 1 600); do
    if [ -f "$f" ] && grep -q '^totals:\|^summary:' "$f"; then echo "$f"; return 0; fi
    sleep 0.2
  done
  echo "no dump $f" >&2; return 1
}

measure() { # target run -> prints "target run ir_rounds ir_idle"
  local target=$1 run=$2 port dir dll
  port=$(free_port); dir="$WORK/data.$run"; rm -rf "$dir"; mkdir -p "$dir"
  if [ "$target" = redis ]; then
    (cd "$WORK" && exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" --dump-instr=yes \
      redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --save '' >"$WORK/server.log" 2>&1) &
  else
    dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
    # shellcheck disable=SC2086
    (cd "$WORK" && DOTNET_TieredPGO=0 DOTNET_TC_CallCountingDelayMs=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 \
      DOTNET_JitEnableOptionalRelocs=0 DOTNET_PerfMapEnabled=1 DOTNET_PerfMapIgnoreSignal=1 \
      exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" --dump-instr=yes \
      dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$dir" --backend "$BACKEND" $KV_ARGS >"$WORK/server.log" 2>&1) &
  fi
  SPID=$!
  local t_start ready=""
  t_start=$(date +%s)
  while [ $(($(date +%s) - t_start)) -lt "$READY_SECS" ]; do
    if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then ready=1; break; fi
    kill -0 "$SPID" 2>/dev/null || break
    sleep 1
  done
  if [ -z "$ready" ]; then
    echo "server ($target) not ready after $(($(date +%s) - t_start)) s (pid $SPID); its log:" >&2
    grep -v '^==' "$WORK/server.log" | tail -20 >&2
    kill -KILL "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true
    return 1
  fi
  echo "# $target ready in $(($(date +%s) - t_start)) s" >&2
  dotnet "$LOADGEN_DLL" pingpong --port "$port" --rounds "$WARMUP" --timeout 600 >/dev/null
  local t0 t1 secs f w=0 windows=""
  # Consecutive windows of ROUNDS round trips: tier-1 compiles still running in the first ones show as a higher count;
  # the summary takes each run's lowest window (the settled code).
  for w in $(seq 1 "$WINDOWS"); do
    callgrind_control -z "$SPID" >/dev/null
    t0=$(date +%s.%N)
    dotnet "$LOADGEN_DLL" pingpong --port "$port" --rounds "$ROUNDS" --timeout 900 >/dev/null
    t1=$(date +%s.%N)
    callgrind_control -d "$SPID" >/dev/null
    f=$(wait_dump "$SPID" "$w")
    windows="$windows $(total_ir "$f")"
  done
  secs=$(python3 -c "print($t1 - $t0)")
  callgrind_control -z "$SPID" >/dev/null
  sleep "$secs"
  callgrind_control -d "$SPID" >/dev/null
  local idle
  idle=$(total_ir "$(wait_dump "$SPID" $((WINDOWS + 1)))")
  echo "$target $run $idle $secs$windows"
  if [ "$TOP" -gt 0 ]; then
    # the lowest window's dump
    local best=1 bestv="" i=0
    for v in $windows; do i=$((i + 1)); if [ -z "$bestv" ] || [ "$v" -lt "$bestv" ]; then bestv=$v; best=$i; fi; done
    cp "$WORK/callgrind.out.$SPID.$best" "$WORK/last.$run.out"
    [ -f "/tmp/perf-$SPID.map" ] && cp "/tmp/perf-$SPID.map" "$WORK/last.$run.map"
  fi
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  SPID=""
}

: >"$WORK/runs.txt"
run=0
for rep in $(seq 1 "$REPEATS"); do
  for t in "$@"; do
    run=$((run + 1))
    measure "$t" "$run" | tee -a "$WORK/runs.txt" >&2
    if [ "$TOP" -gt 0 ] && [ "$rep" = "$REPEATS" ]; then
      echo "== top $TOP self cost, $t (last run; instructions per round trip)"
      python3 "$ROOT/bench/lib/callgrind-self.py" "$WORK/last.$run.out" "$WORK/last.$run.map" "$ROUNDS" "$TOP" || true
    fi
  done
done
python3 "$ROOT/bench/lib/callgrind-windows-summary.py" "$WORK/runs.txt" "$ROUNDS" "round trip"
