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
# KV_ARGS (extra server arguments, e.g. "--backend epoll"), TOP (0).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${REQUESTS:-32000}"; WARMUP="${WARMUP:-64000}"; REPEATS="${REPEATS:-1}"; TOP="${TOP:-0}"; WINDOWS="${WINDOWS:-2}"
CLIENTS="${CLIENTS:-50}"; PIPELINE="${PIPELINE:-16}"; SIZE="${SIZE:-16}"; KEYSPACE="${KEYSPACE:-10000}"
KV_ARGS="${KV_ARGS:-}"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ $# -gt 0 ] || { sed -n '2,16p' "$0"; exit 2; }
WORK="$(mktemp -d /tmp/kv-set-instr.XXXXXX)"; SPID=""
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

bench_set() { # port requests
  redis-benchmark -h 127.0.0.1 -p "$1" -c "$CLIENTS" -P "$PIPELINE" -d "$SIZE" -r "$KEYSPACE" -n "$2" -t set -q >/dev/null 2>&1
}

measure() { # target run -> prints "target run ir_rounds ir_idle"
  local target=$1 run=$2 port dir dll
  port=$(free_port); dir="$WORK/data.$run"; rm -rf "$dir"; mkdir -p "$dir"
  if [ "$target" = redis ]; then
    (cd "$WORK" && exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" --dump-instr=yes \
      redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync everysec --auto-aof-rewrite-percentage 0 --save '' >"$WORK/server.log" 2>&1) &
  else
    dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
    # shellcheck disable=SC2086
    (cd "$WORK" && DOTNET_TieredPGO=0 DOTNET_TC_CallCountingDelayMs=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 \
      DOTNET_JitEnableOptionalRelocs=0 DOTNET_PerfMapEnabled=1 DOTNET_PerfMapIgnoreSignal=1 \
      exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" --dump-instr=yes \
      dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync everysec --auto-aof-rewrite-percentage 0 $KV_ARGS >"$WORK/server.log" 2>&1) &
  fi
  SPID=$!
  for _ in $(seq 1 2400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.5; done
  bench_set "$port" "$WARMUP"
  local t0 t1 secs f w=0 windows=""
  # Consecutive windows of REQUESTS SETs: tier-1 compiles still running in the first ones show as a higher count;
  # the summary takes each run's lowest window (the settled code).
  for w in $(seq 1 "$WINDOWS"); do
    callgrind_control -z "$SPID" >/dev/null
    t0=$(date +%s.%N)
    bench_set "$port" "$ROUNDS"
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
      echo "== top $TOP self cost, $t (last run; instructions per request)"
      python3 "$ROOT/bench/lib/callgrind-self.py" "$WORK/last.$run.out" "$WORK/last.$run.map" "$ROUNDS" "$TOP" || true
    fi
  done
done
python3 "$ROOT/bench/lib/callgrind-windows-summary.py" "$WORK/runs.txt" "$ROUNDS" "request"
